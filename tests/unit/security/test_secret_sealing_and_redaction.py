"""Secrets at rest: sealed with AES-GCM under a 0600 key file; redaction never lets one through."""

from __future__ import annotations

import base64
import json
import os
import stat
import threading
from pathlib import Path

import pytest
import structlog
from hypothesis import given
from hypothesis import strategies as st
from structlog.testing import capture_logs
from bend.security.errors import InvalidKeyMaterial
from bend.security.keyfiles import load_keys, load_or_create_key
from bend.security.redact import MASK, Redactor, redact, redaction_processor
from bend.security.secretbox import SecretBox, Unsealable
from bend.settings import Settings

KEY = b"k" * 32


def test_a_sealed_value_opens_only_with_its_key_and_context() -> None:
    box = SecretBox(KEY)
    sealed = box.seal("hunter2-token", "acme/openai")
    assert b"hunter2" not in sealed
    assert box.open(sealed, "acme/openai") == "hunter2-token"
    with pytest.raises(Unsealable):
        box.open(sealed, "globex/openai")  # a row copied to another project
    with pytest.raises(Unsealable):
        SecretBox(b"j" * 32).open(sealed, "acme/openai")
    tampered = sealed[:-1] + bytes([sealed[-1] ^ 1])
    with pytest.raises(Unsealable):
        box.open(tampered, "acme/openai")


def test_sealing_twice_gives_different_ciphertexts() -> None:
    box = SecretBox(KEY)
    assert box.seal("v", "c") != box.seal("v", "c")  # fresh nonce each time


def test_a_key_of_the_wrong_length_is_refused() -> None:
    with pytest.raises(InvalidKeyMaterial, match="32 bytes"):
        SecretBox(b"short")


def test_a_key_file_is_created_once_with_mode_0600_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "security" / "secrets.key"
    first = load_or_create_key(path)
    assert len(first) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_key(path) == first
    assert [p.name for p in path.parent.iterdir()] == ["secrets.key"]  # no temp file left


def test_processes_creating_the_key_file_at_once_all_get_the_same_key(tmp_path: Path) -> None:
    path = tmp_path / "race.key"
    keys: list[bytes] = []
    barrier = threading.Barrier(8)

    def load() -> None:
        barrier.wait()
        keys.append(load_or_create_key(path))

    threads = [threading.Thread(target=load) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert len(keys) == 8 and len(set(keys)) == 1


def test_a_key_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "open.key"
    load_or_create_key(path)
    os.chmod(path, 0o644)
    with pytest.raises(InvalidKeyMaterial, match="chmod 600"):
        load_or_create_key(path)


def test_settings_keys_win_over_key_files_and_are_checked(tmp_path: Path) -> None:
    settings = Settings(dev={"state_dir": tmp_path})
    generated = load_keys(settings)
    assert load_keys(settings) == generated  # the same files on the next start
    assert {p.name for p in (tmp_path / "security").iterdir()} == {
        "jwt.key", "api_key_pepper.key", "secrets.key"}
    configured = Settings(dev={"state_dir": tmp_path}, security={
        "jwt_secret": "j" * 32, "api_key_pepper": "p" * 16,
        "secrets_key": base64.b64encode(KEY).decode()})
    keys = load_keys(configured)
    assert (keys.jwt_secret, keys.api_key_pepper, keys.secrets_key) == (b"j" * 32, b"p" * 16, KEY)
    assert "j" * 32 not in repr(keys)
    with pytest.raises(InvalidKeyMaterial, match="32 bytes"):
        load_keys(Settings(dev={"state_dir": tmp_path}, security={"jwt_secret": "short"}))
    with pytest.raises(InvalidKeyMaterial, match="base64"):
        load_keys(Settings(dev={"state_dir": tmp_path}, security={"secrets_key": "%%%"}))


# --- redaction ------------------------------------------------------------------------------


def test_redact_masks_secrets_in_text_and_every_level_of_json() -> None:
    secrets = ["sk-live-123456", "p@ss"]
    value = {
        "prompt": "use sk-live-123456 please",
        "headers": [{"Authorization": "Bearer sk-live-123456"}, ("p@ss", 1)],
        "sk-live-123456": True,
        "count": 3,
        "none": None,
        "raw": b"token=p@ss",
    }
    masked = redact(value, secrets)
    assert masked == {
        "prompt": f"use {MASK} please",
        "headers": [{"Authorization": f"Bearer {MASK}"}, (MASK, 1)],
        MASK: True,
        "count": 3,
        "none": None,
        "raw": f"token={MASK}".encode(),
    }
    assert value["prompt"] == "use sk-live-123456 please"  # the input is left alone


def test_redact_masks_a_secret_inside_json_text_where_it_appears_escaped() -> None:
    secret = 'qu"ote\\back/slash-é'
    text = json.dumps({"key": secret})
    assert secret not in text  # escaped in the JSON text
    masked = redact(text, [secret])
    assert json.loads(masked) == {"key": MASK}
    assert redact(json.dumps({"k": secret}, ensure_ascii=False), [secret]) == json.dumps({"k": MASK})


def test_a_secret_containing_another_is_masked_whole() -> None:
    assert redact("abcdef and abc", ["abc", "abcdef"]) == f"{MASK} and {MASK}"


def test_a_number_equal_to_a_secret_is_masked() -> None:
    assert redact({"pin": 123456, "n": 7}, ["123456"]) == {"pin": MASK, "n": 7}


def test_no_secrets_or_empty_secrets_leave_the_value_unchanged() -> None:
    value = {"a": ["b", 1]}
    assert redact(value, []) == value
    assert redact("text", [""]) == "text"


@given(
    # A secret holding `*` could be re-formed by the mask next to its own neighbours.
    secret=st.text(min_size=4, max_size=20).filter(lambda s: "*" not in s),
    prefix=st.text(max_size=20),
    suffix=st.text(max_size=20),
)
def test_a_secret_never_survives_redaction_whatever_surrounds_it(
    secret: str, prefix: str, suffix: str
) -> None:
    redactor = Redactor([secret])
    for shape in (f"{prefix}{secret}{suffix}", json.dumps({prefix: f"{secret}{suffix}"}),
                  json.dumps([prefix, secret], ensure_ascii=False)):
        out = redactor(shape)
        assert secret not in out
        for escaped in (json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1]):
            assert escaped not in out


def test_the_log_processor_masks_secrets_in_every_field() -> None:
    with capture_logs(processors=[redaction_processor(lambda: ["s3cr3t-value"])]) as logs:
        structlog.get_logger("t").info("calling", url="https://x/?k=s3cr3t-value", n=1)
    assert logs == [{"event": "calling", "url": f"https://x/?k={MASK}", "n": 1,
                     "log_level": "info"}]
