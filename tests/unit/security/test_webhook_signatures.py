"""Webhook deliveries: signed ones pass once; forged, stale, replayed or incomplete ones fail."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from bend.security.errors import BadSignature, MissingHeader, ReplayedDelivery, StaleTimestamp
from bend.security.webhooks import SIGNATURE_HEADER, MemoryReplayGuard, sign, verify

SECRET = "whsec_test"
BODY = b'{"event": "order.created", "id": 42}'
T = 1_800_000_000
TOLERANCE = 300


async def _verify(headers: dict[str, str], body: bytes = BODY, now: float = T,
                  guard: MemoryReplayGuard | None = None, **kw: object) -> int:
    return await verify(SECRET, headers, body, now, TOLERANCE, guard or MemoryReplayGuard(),
                        **kw)  # type: ignore[arg-type]


def test_the_signature_is_hmac_sha256_over_timestamp_dot_body() -> None:
    expected = hmac.new(SECRET.encode(), f"{T}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert sign(SECRET, T, BODY) == f"t={T},v1={expected}"
    assert sign(SECRET.encode(), T, BODY.decode()) == sign(SECRET, T, BODY)


async def test_a_correctly_signed_delivery_is_accepted_and_gives_its_timestamp() -> None:
    assert await _verify({SIGNATURE_HEADER: sign(SECRET, T, BODY)}, now=T + 10) == T


async def test_header_names_are_matched_whatever_their_case() -> None:
    assert await _verify({"x-bend-signature": sign(SECRET, T, BODY)}) == T


async def test_a_delivery_signed_with_another_secret_is_a_bad_signature() -> None:
    with pytest.raises(BadSignature) as caught:
        await _verify({SIGNATURE_HEADER: sign("other", T, BODY)})
    assert caught.value.status == 401


async def test_a_delivery_whose_body_or_timestamp_was_altered_is_a_bad_signature() -> None:
    good = sign(SECRET, T, BODY)
    with pytest.raises(BadSignature):
        await _verify({SIGNATURE_HEADER: good}, body=BODY + b" ")
    moved = good.replace(f"t={T}", f"t={T + 1}")
    with pytest.raises(BadSignature):
        await _verify({SIGNATURE_HEADER: moved})


@pytest.mark.parametrize("value", ["", "t=abc,v1=00", f"t={T}", "v1=" + "0" * 64,
                                   f"t={T},v1=XYZ", f"t=-5,v1={'0' * 64}"])
async def test_a_missing_or_malformed_signature_header_is_a_bad_signature(value: str) -> None:
    headers = {SIGNATURE_HEADER: value} if value else {}
    with pytest.raises(BadSignature):
        await _verify(headers)


async def test_any_of_several_v1_signatures_may_match_during_secret_rotation() -> None:
    old = sign("old-secret", T, BODY).split(",")[1]
    new = sign(SECRET, T, BODY).split(",")[1]
    assert await _verify({SIGNATURE_HEADER: f"t={T},{old},{new}"}) == T


@pytest.mark.parametrize("offset", [-TOLERANCE - 1, TOLERANCE + 1, 86_400])
async def test_a_timestamp_outside_the_window_is_stale(offset: int) -> None:
    with pytest.raises(StaleTimestamp) as caught:
        await _verify({SIGNATURE_HEADER: sign(SECRET, T, BODY)}, now=T - offset)
    assert caught.value.status == 401


@pytest.mark.parametrize("offset", [-TOLERANCE, 0, TOLERANCE])
async def test_a_timestamp_at_the_window_edges_is_fresh(offset: int) -> None:
    assert await _verify({SIGNATURE_HEADER: sign(SECRET, T, BODY)}, now=T + offset) == T


async def test_the_same_delivery_twice_is_a_replay() -> None:
    guard = MemoryReplayGuard()
    headers = {SIGNATURE_HEADER: sign(SECRET, T, BODY)}
    await _verify(headers, guard=guard)
    with pytest.raises(ReplayedDelivery) as caught:
        await _verify(headers, now=T + 5, guard=guard)
    assert caught.value.status == 401


async def test_a_replay_at_the_very_edge_of_the_window_is_still_refused() -> None:
    guard = MemoryReplayGuard()
    headers = {SIGNATURE_HEADER: sign(SECRET, T, BODY)}
    await _verify(headers, guard=guard)
    with pytest.raises(ReplayedDelivery):
        await _verify(headers, now=T + TOLERANCE, guard=guard)
    with pytest.raises(StaleTimestamp):  # past the edge the stale check takes over
        await _verify(headers, now=T + TOLERANCE + 1, guard=guard)


async def test_the_same_delivery_to_two_hooks_is_not_a_replay_when_scoped() -> None:
    guard = MemoryReplayGuard()
    headers = {SIGNATURE_HEADER: sign(SECRET, T, BODY)}
    await _verify(headers, guard=guard, scope="trigger-a")
    await _verify(headers, guard=guard, scope="trigger-b")
    with pytest.raises(ReplayedDelivery):
        await _verify(headers, guard=guard, scope="trigger-a")


async def test_a_forged_delivery_is_not_remembered() -> None:
    guard = MemoryReplayGuard()
    with pytest.raises(BadSignature):
        await _verify({SIGNATURE_HEADER: sign("forger", T, BODY)}, guard=guard)
    assert guard._seen == {}


async def test_a_required_header_that_is_missing_is_a_400_missing_header() -> None:
    headers = {SIGNATURE_HEADER: sign(SECRET, T, BODY), "X-Event": "order.created"}
    assert await _verify(headers, required_headers=["x-event"]) == T
    with pytest.raises(MissingHeader) as caught:
        await _verify(headers, required_headers=["X-Event", "X-Delivery-Id"])
    assert caught.value.status == 400 and caught.value.header == "X-Delivery-Id"


async def test_the_memory_guard_forgets_expired_entries() -> None:
    guard = MemoryReplayGuard()
    assert await guard.first_time("k", expires_at=10.0, now=0.0)
    assert not await guard.first_time("k", expires_at=20.0, now=9.0)
    assert await guard.first_time("k", expires_at=30.0, now=10.0)
