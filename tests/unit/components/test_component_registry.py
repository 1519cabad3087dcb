"""The registry: refs, newest versions, listing, search, and entry-point discovery."""

from __future__ import annotations

import pytest

from bend.components import Registry, UnknownComponent, component, default_registry, parse_ref
from bend.components.builtin import fetch_page, web_search
from bend.components.errors import DuplicateComponent, InvalidComponent, InvalidComponentRef


def make(name: str, version: str, tags: tuple[str, ...] = (), description: str = ""):
    """A trivial component `name@version`."""

    @component(name, version, description=description or f"{name} v{version}", tags=tags)
    def fn() -> dict:
        return {}

    return fn


def test_a_ref_splits_into_name_and_version() -> None:
    assert parse_ref("web_search@1") == ("web_search", "1")
    assert parse_ref("web_search") == ("web_search", None)


@pytest.mark.parametrize("ref", ["", "@1", "web_search@", "a@1@2"])
def test_a_malformed_ref_is_refused_with_the_expected_form(ref: str) -> None:
    with pytest.raises(InvalidComponentRef, match="name@version"):
        parse_ref(ref)


def test_get_by_name_and_version_returns_that_version() -> None:
    v1, v2 = make("summarise", "1"), make("summarise", "2")
    registry = Registry([v1, v2])
    assert registry.get("summarise@1") is v1
    assert registry.get("summarise@2") is v2


def test_get_by_bare_name_returns_the_newest_version_numerically() -> None:
    registry = Registry([make("s", "9"), make("s", "10"), make("s", "1.2.0"), make("s", "2.0")])
    assert registry.get("s").version == "10"


def test_an_unknown_component_names_what_is_registered() -> None:
    registry = Registry([make("summarise", "1")])
    with pytest.raises(UnknownComponent, match=r"summarise@1") as err:
        registry.get("summarise@3")
    assert err.value.ref == "summarise@3"
    with pytest.raises(UnknownComponent):
        registry.get("translate")
    assert "summarise@1" in registry and "summarise@3" not in registry


def test_registering_the_same_component_twice_is_harmless() -> None:
    comp = make("a", "1")
    registry = Registry([comp, comp])
    assert registry.list() == [comp]


def test_two_callables_under_one_ref_are_refused() -> None:
    with pytest.raises(DuplicateComponent, match="bump the version"):
        Registry([make("a", "1"), make("a", "1")])


def test_only_decorated_components_register() -> None:
    with pytest.raises(InvalidComponent):
        Registry().register(lambda: None)  # type: ignore[arg-type]


def test_list_orders_components_by_name_then_version() -> None:
    registry = Registry([make("b", "2"), make("a", "1"), make("b", "10")])
    assert [c.ref for c in registry.list()] == ["a@1", "b@2", "b@10"]


def test_search_matches_every_word_of_the_text_and_all_the_tags() -> None:
    registry = Registry([
        make("web", "1", ("search", "net"), "Search the web for pages"),
        make("docs", "1", ("search",), "Search internal documents"),
        make("mail", "1", ("send",), "Send an email"),
    ])
    assert [c.name for c in registry.search("search")] == ["docs", "web"]
    assert [c.name for c in registry.search("search pages")] == ["web"]
    assert [c.name for c in registry.search(tags=["search", "NET"])] == ["web"]
    assert [c.name for c in registry.search("email", tags=["search"])] == []
    assert len(registry.search()) == 3


def test_the_example_components_are_discovered_through_entry_points() -> None:
    registry = Registry.from_entry_points()
    assert registry.get("web_search@1") is web_search
    assert registry.get("fetch_page@1") is fetch_page


def test_the_default_registry_holds_the_builtin_components() -> None:
    assert {"web_search@1", "fetch_page@1"} <= {c.ref for c in default_registry().list()}


def test_a_component_describes_itself_as_json() -> None:
    described = web_search.describe()
    assert described["ref"] == "web_search@1"
    assert described["input_schema"]["required"] == ["query"]
    assert "search" in described["tags"]
