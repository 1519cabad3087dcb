"""API key text: recognisable prefix, parsed strictly, only an HMAC of the secret is kept."""

from __future__ import annotations

import pytest

from bend.security.apikeys import (
    generate_key, hash_secret, looks_like_key, parse_key, secret_matches,
)
from bend.security.errors import InvalidApiKey

PEPPER = b"p" * 32


def test_a_generated_key_has_the_prefix_and_parses_back_into_its_parts() -> None:
    text, parsed = generate_key()
    assert text.startswith(f"bend_{parsed.key_id}_")
    assert looks_like_key(text)
    assert parse_key(text) == parsed


def test_generated_keys_are_unique() -> None:
    texts = {generate_key()[0] for _ in range(200)}
    assert len(texts) == 200


@pytest.mark.parametrize(
    "text",
    [
        "", "bend_", "bend_abc_def", "sk_0123456789abcdef_" + "a" * 43,
        "bend_0123456789ABCDEF_" + "a" * 43, "bend_0123456789abcdef_" + "a" * 42,
        "bend_0123456789abcdef_" + "a" * 42 + "!", "eyJhbGciOiJIUzI1NiJ9.e30.x",
    ],
)
def test_malformed_keys_are_invalid(text: str) -> None:
    with pytest.raises(InvalidApiKey) as caught:
        parse_key(text)
    assert caught.value.status == 401
    assert caught.value.headers["WWW-Authenticate"].startswith("Bearer")


def test_the_hash_matches_only_the_same_secret_and_pepper() -> None:
    _, parsed = generate_key()
    _, other = generate_key()
    stored = hash_secret(PEPPER, parsed)
    assert parsed.secret not in stored
    assert secret_matches(PEPPER, parsed, stored)
    assert not secret_matches(PEPPER, other, stored)
    assert not secret_matches(b"q" * 32, parsed, stored)


def test_the_secret_never_shows_in_the_parsed_keys_repr() -> None:
    _, parsed = generate_key()
    assert parsed.secret not in repr(parsed)
