"""Which secrets a definition names: `{{ secrets.NAME }}` anywhere, and the secret-name fields."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from bend.core.secret_refs import secrets_named

NAMES = st.from_regex(r"[A-Za-z_][A-Za-z0-9_.-]{0,20}", fullmatch=True)


def test_templates_in_nested_strings_and_secret_fields_are_found() -> None:
    definition = {
        "name": "wf",
        "steps": [
            {"id": "call", "type": "http", "url": "https://x/{{secrets.PATH_TOKEN}}",
             "headers": {"Authorization": "Bearer {{ secrets.API_TOKEN }}"},
             "body": {"items": ["{{ secrets.IN_A_LIST }}", 3, None]}},
            {"id": "ask", "type": "llm", "llm": {"api_key_secret": "OPENAI_KEY"}},
        ],
        "notifications": [{"webhook": {"url": "https://hook", "secret": "HOOK_SIGNING"}}],
    }
    assert secrets_named(definition) == {"PATH_TOKEN", "API_TOKEN", "IN_A_LIST", "OPENAI_KEY",
                                         "HOOK_SIGNING"}


def test_inputs_and_step_outputs_are_not_secrets() -> None:
    assert secrets_named({"x": "{{ input.secrets.NAME }}", "y": "${secrets.NAME}",
                          "secret": None, "api_key_secret": ""}) == frozenset()


@given(st.lists(NAMES, max_size=5), st.recursive(
    st.none() | st.integers() | st.text(alphabet="abc {}", max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["a", "b", "c"]), inner, max_size=3), max_leaves=10))
def test_every_template_placed_anywhere_is_found(names: list[str], noise: Any) -> None:
    definition = {"steps": [{"headers": {f"h{i}": f"x {{{{ secrets.{n} }}}} y"}}
                            for i, n in enumerate(names)], "noise": noise}
    assert secrets_named(definition) == set(names)
