"""Security stores on the real Postgres: API keys, secrets at rest, webhook replay, API wiring.

Everything runs in a schema of its own (`sec_test_<random>`), dropped at the end.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse

from bend.security import Principal, Role
from bend.security.adminlog import AdminAction, AdminLog
from bend.security.bootstrap import bootstrap_admin_key
from bend.security.dependencies import Security, allow, authenticate, build_security
from bend.security.errors import (
    ExpiredApiKey, InvalidApiKey, InvalidSecretName, ReplayedDelivery, RevokedApiKey,
    SecretUndecryptable, SecurityError, UnknownApiKey, UnknownSecret,
)
from bend.security.keyfiles import SecurityKeys, load_keys
from bend.security.keystore import ApiKeyStore
from bend.security.schema import ensure_schema, migrations
from bend.security.secretstore import SecretStore
from bend.security.webhooks import SIGNATURE_HEADER, PostgresReplayGuard, sign, verify
from bend.settings import Settings

pytestmark = pytest.mark.integration

PEPPER = b"pepper-for-tests-0123456789abcdef"
KEY = b"k" * 32
T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


class Clock:
    """A settable wall clock."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(scope="module")
async def schema_url(database_url: str) -> AsyncIterator[str]:
    """A URL whose connections use a fresh schema, so runs and other suites never clash."""
    schema = f"sec_test_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(database_url)
    await admin.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in database_url else "?"
    try:
        yield f"{database_url}{sep}search_path={schema}"
    finally:
        await admin.execute(f"DROP SCHEMA {schema} CASCADE")
        await admin.close()


@pytest.fixture(scope="module")
async def pool(schema_url: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool on the test schema, with the `sec_*` tables."""
    pool = await asyncpg.create_pool(schema_url, min_size=1, max_size=4)
    await ensure_schema(pool)
    try:
        yield pool
    finally:
        await pool.close()


def _project() -> str:
    """A project no other test uses."""
    return f"p-{secrets.token_hex(4)}"


# --- schema ---------------------------------------------------------------------------------


async def test_ensure_schema_applies_each_migration_once_even_when_raced(
    database_url: str,
) -> None:
    schema = f"sec_race_{secrets.token_hex(4)}"
    url = f"{database_url}{'&' if '?' in database_url else '?'}search_path={schema}"
    admin = await asyncpg.connect(database_url)
    await admin.execute(f"CREATE SCHEMA {schema}")
    pools = [await asyncpg.create_pool(url, min_size=1, max_size=1) for _ in range(3)]
    try:
        applied = await asyncio.gather(*(ensure_schema(p) for p in pools))
        assert sorted(v for a in applied for v in a) == [v for v, _ in migrations()]
        assert await ensure_schema(pools[0]) == []
        tables = {r["tablename"] for r in await admin.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = $1", schema)}
        assert tables == {"sec_schema_migrations", "sec_api_keys", "sec_secrets",
                          "sec_webhook_seen", "sec_access_denials", "sec_rate_buckets",
                          "sec_admin_actions", "sec_mcp_servers"}
    finally:
        for p in pools:
            await p.close()
        await admin.execute(f"DROP SCHEMA {schema} CASCADE")
        await admin.close()


# --- admin actions --------------------------------------------------------------------------


async def test_admin_actions_are_listed_newest_first_per_project_and_filtered(
        pool: asyncpg.Pool) -> None:
    project = f"adm-{secrets.token_hex(3)}"
    times = iter([datetime(2026, 1, 1, 12, m, tzinfo=UTC) for m in range(5)])
    log = AdminLog(pool, clock=lambda: next(times))
    await log.record(AdminAction(project, "key:a", "key.create", "key:k1", "10.0.0.1",
                                 {"role": "viewer"}))
    await log.record(AdminAction(project, "key:b", "secret.set", "secret:S", "10.0.0.2"))
    await log.record(AdminAction(project, "key:a", "key.revoke", "key:k1", "10.0.0.1"))
    await log.record(AdminAction("other", "key:a", "key.create", "key:k9", "10.0.0.1"))

    async def listed(**where: object) -> list[tuple[str, str]]:
        args: dict[str, object] = {"actor": None, "action": None, "since": None,
                                   "until": None, "after": None, "limit": 10, **where}
        rows = await log.list(project, **args)  # type: ignore[arg-type]
        return [(r["action"], r["detail"]["resource"]) for r in rows]

    assert await listed() == [("key.revoke", "key:k1"), ("secret.set", "secret:S"),
                              ("key.create", "key:k1")]
    assert await listed(actor="key:b") == [("secret.set", "secret:S")]
    assert await listed(action="key.create") == [("key.create", "key:k1")]
    assert await listed(since=datetime(2026, 1, 1, 12, 1, tzinfo=UTC),
                        until=datetime(2026, 1, 1, 12, 2, tzinfo=UTC)) == [
        ("secret.set", "secret:S")]
    first = (await log.list(project, actor=None, action=None, since=None, until=None,
                            after=None, limit=1))[0]
    assert first["detail"]["client_ip"] == "10.0.0.1"
    assert await listed(after=(first["occurred_at"], first["event_id"])) == [
        ("secret.set", "secret:S"), ("key.create", "key:k1")]


# --- API keys -------------------------------------------------------------------------------


async def test_a_created_key_verifies_to_its_project_and_role_and_only_its_hash_is_stored(
    pool: asyncpg.Pool,
) -> None:
    project = _project()
    store = ApiKeyStore(pool, PEPPER)
    issued = await store.create(project, "operator", name="ci", created_by="key:boot")
    principal = await store.verify(issued.key)
    assert principal == Principal(subject=f"key:{issued.info.key_id}", project=project,
                                  role=Role.OPERATOR, key_id=issued.info.key_id)
    row = await pool.fetchrow("SELECT * FROM sec_api_keys WHERE key_id = $1", issued.info.key_id)
    secret_part = issued.key.split("_", 2)[2]
    assert all(secret_part not in str(v) for v in row.values())
    assert issued.key not in repr(issued)


async def test_a_wrong_secret_for_a_real_key_id_is_an_invalid_key(pool: asyncpg.Pool) -> None:
    store = ApiKeyStore(pool, PEPPER)
    issued = await store.create(_project(), Role.VIEWER)
    prefix, key_id, secret = issued.key.split("_", 2)
    wrong = f"{prefix}_{key_id}_{'A' if secret[0] != 'A' else 'B'}{secret[1:]}"
    with pytest.raises(InvalidApiKey):
        await store.verify(wrong)
    with pytest.raises(InvalidApiKey):
        await ApiKeyStore(pool, b"another-pepper-0123456789abcdef").verify(issued.key)
    with pytest.raises(InvalidApiKey):  # an unknown key id
        await store.verify(f"bend_{'0' * 16}_{secret}")


async def test_a_revoked_key_is_refused_and_others_of_the_project_still_work(
    pool: asyncpg.Pool,
) -> None:
    project = _project()
    clock = Clock()
    store = ApiKeyStore(pool, PEPPER, clock=clock)
    doomed, kept = await store.create(project, "editor"), await store.create(project, "viewer")
    revoked = await store.revoke(project, doomed.info.key_id)
    assert revoked.revoked_at == T0
    clock.now = T0 + timedelta(hours=1)
    assert (await store.revoke(project, doomed.info.key_id)).revoked_at == T0  # first time kept
    with pytest.raises(RevokedApiKey):
        await store.verify(doomed.key)
    assert (await store.verify(kept.key)).role is Role.VIEWER


async def test_a_revoked_key_is_not_told_apart_from_a_wrong_one_without_its_secret(
    pool: asyncpg.Pool,
) -> None:
    project = _project()
    store = ApiKeyStore(pool, PEPPER)
    issued = await store.create(project, "editor")
    await store.revoke(project, issued.info.key_id)
    forged = issued.key[:-1] + ("A" if issued.key[-1] != "A" else "B")
    with pytest.raises(InvalidApiKey):
        await store.verify(forged)


async def test_an_expired_key_is_refused(pool: asyncpg.Pool) -> None:
    clock = Clock()
    store = ApiKeyStore(pool, PEPPER, clock=clock)
    issued = await store.create(_project(), "viewer", expires_at=T0 + timedelta(days=1))
    await store.verify(issued.key)
    clock.now = T0 + timedelta(days=1)
    with pytest.raises(ExpiredApiKey):
        await store.verify(issued.key)


async def test_last_used_is_written_on_use_but_at_most_once_a_minute(pool: asyncpg.Pool) -> None:
    project = _project()
    clock = Clock()
    store = ApiKeyStore(pool, PEPPER, clock=clock, touch_every_s=60)
    issued = await store.create(project, "viewer")
    assert (await store.get(project, issued.info.key_id)).last_used_at is None
    await store.verify(issued.key)
    clock.now = T0 + timedelta(seconds=30)
    await store.verify(issued.key)
    assert (await store.get(project, issued.info.key_id)).last_used_at == T0
    clock.now = T0 + timedelta(seconds=61)
    await store.verify(issued.key)
    assert (await store.get(project, issued.info.key_id)).last_used_at == clock.now


async def test_keys_are_listed_per_project_and_invisible_to_other_projects(
    pool: asyncpg.Pool,
) -> None:
    mine, theirs = _project(), _project()
    store = ApiKeyStore(pool, PEPPER)
    a = await store.create(mine, "admin", name="a")
    b = await store.create(mine, "viewer", name="b")
    other = await store.create(theirs, "admin", name="c")
    listed = await store.list(mine)
    assert [k.key_id for k in listed] == [a.info.key_id, b.info.key_id]
    assert other.info.key_id not in {k.key_id for k in listed}
    with pytest.raises(UnknownApiKey):
        await store.revoke(mine, other.info.key_id)
    with pytest.raises(UnknownApiKey):
        await store.get(mine, other.info.key_id)
    assert (await store.verify(other.key)).project == theirs  # untouched


async def test_bootstrap_mints_one_admin_key_even_when_raced(pool: asyncpg.Pool) -> None:
    project = _project()
    store = ApiKeyStore(pool, PEPPER)
    results = await asyncio.gather(*(store.bootstrap_admin(project) for _ in range(4)))
    minted = [r for r in results if r is not None]
    assert len(minted) == 1
    assert (await store.verify(minted[0].key)).role is Role.ADMIN
    assert await store.bootstrap_admin(project) is None
    await store.revoke(project, minted[0].info.key_id)
    assert await store.bootstrap_admin(project) is not None  # no active admin left


async def test_the_cli_bootstrap_prints_a_key_once_from_settings(
    schema_url: str, pool: asyncpg.Pool, tmp_path: Path,
) -> None:
    settings = Settings(database_url=schema_url, project=_project(),
                        dev={"state_dir": tmp_path})
    key = await bootstrap_admin_key(settings)
    assert key is not None and key.startswith("bend_")
    assert await bootstrap_admin_key(settings) is None
    principal = await ApiKeyStore(pool, load_keys(settings).api_key_pepper).verify(key)
    assert (principal.project, principal.role) == (settings.project, Role.ADMIN)


# --- secrets --------------------------------------------------------------------------------


async def test_secrets_round_trip_encrypted_at_rest_and_listed_by_name_only(
    pool: asyncpg.Pool,
) -> None:
    project = _project()
    store = SecretStore(pool, KEY)
    await store.set(project, "OPENAI_API_KEY", "sk-live-very-secret")
    await store.set(project, "db.password", "hunter2")
    await store.set(project, "db.password", "hunter3")  # replaces
    assert await store.get(project, "OPENAI_API_KEY") == "sk-live-very-secret"
    assert await store.get(project, "db.password") == "hunter3"
    assert [s.name for s in await store.list(project)] == ["OPENAI_API_KEY", "db.password"]
    assert await store.values(project) == {"OPENAI_API_KEY": "sk-live-very-secret",
                                           "db.password": "hunter3"}
    raw = await pool.fetch("SELECT * FROM sec_secrets WHERE project = $1", project)
    dumped = repr([dict(r) for r in raw]).encode() + b"".join(r["ciphertext"] for r in raw)
    assert b"sk-live" not in dumped and b"hunter" not in dumped


async def test_secrets_are_per_project_and_deleted_ones_are_gone(pool: asyncpg.Pool) -> None:
    mine, theirs = _project(), _project()
    store = SecretStore(pool, KEY)
    await store.set(mine, "TOKEN", "mine")
    with pytest.raises(UnknownSecret):
        await store.get(theirs, "TOKEN")
    with pytest.raises(UnknownSecret):
        await store.delete(theirs, "TOKEN")
    await store.delete(mine, "TOKEN")
    with pytest.raises(UnknownSecret):
        await store.get(mine, "TOKEN")
    assert await store.list(mine) == []
    with pytest.raises(InvalidSecretName):
        await store.set(mine, "../etc/passwd", "x")


async def test_a_secret_under_another_key_or_moved_to_another_row_cannot_be_read(
    pool: asyncpg.Pool,
) -> None:
    project, other = _project(), _project()
    await SecretStore(pool, KEY).set(project, "A", "value-a")
    with pytest.raises(SecretUndecryptable, match="restore the key"):
        await SecretStore(pool, b"z" * 32).get(project, "A")
    await pool.execute("UPDATE sec_secrets SET project = $2 WHERE project = $1", project, other)
    with pytest.raises(SecretUndecryptable):
        await SecretStore(pool, KEY).get(other, "A")


# --- webhook replay guard -------------------------------------------------------------------


async def test_a_delivery_accepted_by_one_process_is_a_replay_in_another(
    schema_url: str, pool: asyncpg.Pool,
) -> None:
    other_process = await asyncpg.create_pool(schema_url, min_size=1, max_size=1)
    try:
        t = 1_900_000_000 + secrets.randbelow(10_000)
        headers = {SIGNATURE_HEADER: sign("s", t, b"{}")}
        await verify("s", headers, b"{}", t, 300, PostgresReplayGuard(pool))
        with pytest.raises(ReplayedDelivery):
            await verify("s", headers, b"{}", t + 1, 300, PostgresReplayGuard(other_process))
    finally:
        await other_process.close()


async def test_concurrent_deliveries_of_the_same_signature_are_accepted_once(
    pool: asyncpg.Pool,
) -> None:
    guard = PostgresReplayGuard(pool)
    key = f"k-{secrets.token_hex(8)}"
    firsts = await asyncio.gather(*(guard.first_time(key, 2e9 + 300, 2e9) for _ in range(8)))
    assert sum(firsts) == 1


async def test_expired_signatures_are_forgotten_and_purged(pool: asyncpg.Pool) -> None:
    guard = PostgresReplayGuard(pool)
    key = f"k-{secrets.token_hex(8)}"
    assert await guard.first_time(key, expires_at=2e9 + 10, now=2e9)
    assert not await guard.first_time(key, expires_at=2e9 + 20, now=2e9 + 5)
    assert await guard.first_time(key, expires_at=2e9 + 30, now=2e9 + 10)  # expired: new again
    assert await guard.purge(now=2e9 + 31) >= 1
    assert await pool.fetchval("SELECT count(*) FROM sec_webhook_seen WHERE key = $1", key) == 0


# --- FastAPI wiring -------------------------------------------------------------------------


def _app(security: Security) -> FastAPI:
    app = FastAPI()
    app.state.security = security

    @app.exception_handler(SecurityError)
    async def problem(_request: Request, err: SecurityError) -> JSONResponse:
        return JSONResponse({"status": err.status, "code": err.code, "detail": err.message},
                            status_code=err.status, headers=err.headers,
                            media_type="application/problem+json")

    @app.get("/whoami")
    async def whoami(principal: Principal = Depends(authenticate)) -> dict[str, str]:
        return {"subject": principal.subject, "project": principal.project}

    @app.post("/workflows")
    async def write(principal: Principal = Depends(allow("workflows:write"))) -> dict[str, str]:
        return {"by": principal.subject}

    return app


@pytest.fixture
async def security(pool: asyncpg.Pool) -> Security:
    settings = Settings(security={"key_rate_per_s": 0.01, "key_burst": 5,
                                  "ip_rate_per_s": 1000, "ip_burst": 1000})
    return await build_security(pool, settings, SecurityKeys(
        jwt_secret=b"j" * 32, api_key_pepper=PEPPER, secrets_key=KEY))


async def test_the_api_dependencies_authenticate_authorise_and_rate_limit(
    security: Security,
) -> None:
    project = _project()
    editor = await security.keys.create(project, "editor")
    viewer = await security.keys.create(project, "viewer")
    token = security.tokens.issue(await security.keys.verify(viewer.key)).token
    transport = httpx.ASGITransport(app=_app(security))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        missing = await client.get("/whoami")
        assert missing.status_code == 401 and missing.headers["www-authenticate"].startswith(
            "Bearer")
        assert (await client.get("/whoami", headers={"Authorization": "Bearer nope"})
                ).status_code == 401
        by_key = await client.post("/workflows", headers={"X-Api-Key": editor.key})
        assert by_key.json() == {"by": f"key:{editor.info.key_id}"}
        by_token = await client.get("/whoami", headers={"Authorization": f"Bearer {token}"})
        assert by_token.json()["project"] == project
        denied = await client.post("/workflows", headers={"Authorization": f"Bearer {token}"})
        assert denied.status_code == 403 and denied.json()["code"] == "permission_denied"
        statuses = [(await client.get("/whoami", headers={"X-Api-Key": editor.key})).status_code
                    for _ in range(5)]
        assert statuses[:4] == [200] * 4 and statuses[4] == 429
        limited = await client.get("/whoami", headers={"X-Api-Key": editor.key})
        assert int(limited.headers["retry-after"]) >= 1
