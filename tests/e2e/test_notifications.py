"""Notifications end to end: the real engine and projector, the notifier in this process, a
webhook receiver and an SMTP server on 127.0.0.1 started here. A failed run sends a signed
webhook (tried again after a 500) and an e-mail; a finished run and a waiting approval notify
the webhooks asking for them; the delivery log is read through the API; the run log read again
by a second notifier sends nothing twice."""

from __future__ import annotations

import asyncio
import contextlib
import email
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi import FastAPI, Request, Response

from bend.devstack.engine import Engine, running_engine
from bend.devstack.llm_server import serve_in_background
from bend.security.webhooks import MemoryReplayGuard, verify
from bend.server.testing import RunningApi
from bend.settings import NotifySettings
from streams.executors import DictSecrets
from streams.notifications.notifier import Notifier
from tests.e2e.waiting import running as running_task, until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

SECRET = "whsec-local-test"


@dataclass
class Receiver:
    """Webhook deliveries received; the first `fail_first` of each delivery id answer 500."""

    fail_first: int = 1
    got: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    tries: dict[str, int] = field(default_factory=dict)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/hook")
        async def hook(request: Request) -> Response:
            body = await request.body()
            delivery = request.headers.get("x-bend-delivery", "")
            self.tries[delivery] = self.tries.get(delivery, 0) + 1
            if self.tries[delivery] <= self.fail_first:
                return Response(status_code=500)
            self.got.append((dict(request.headers), body))
            return Response(status_code=204)

        return app


class Smtp(asyncio.Protocol):
    """Just enough SMTP for smtplib.send_message: EHLO, MAIL, RCPT, DATA, QUIT."""

    def __init__(self, inbox: list[bytes]) -> None:
        self.inbox, self.buffer, self.data = inbox, b"", None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        transport.write(b"220 localhost test SMTP\r\n")

    def data_received(self, chunk: bytes) -> None:
        self.buffer += chunk
        while True:
            if self.data is not None:
                end = self.buffer.find(b"\r\n.\r\n")
                if end < 0:
                    return
                self.inbox.append(self.data + self.buffer[:end])
                self.buffer, self.data = self.buffer[end + 5:], None
                self.transport.write(b"250 queued\r\n")
                continue
            line, sep, rest = self.buffer.partition(b"\r\n")
            if not sep:
                return
            self.buffer = rest
            verb = line[:4].upper()
            if verb == b"DATA":
                self.data = b""
                self.transport.write(b"354 go on\r\n")
            elif verb == b"QUIT":
                self.transport.write(b"221 bye\r\n")
                self.transport.close()
                return
            else:
                self.transport.write(b"250 ok\r\n")


@pytest.fixture(scope="module")
def engine(kafka_bootstrap: str, database_url: str) -> Iterator[Engine]:
    with running_engine(executors=0) as engine:
        yield engine


@contextlib.asynccontextmanager
async def smtp_server() -> AsyncIterator[tuple[int, list[bytes]]]:
    inbox: list[bytes] = []
    server = await asyncio.get_running_loop().create_server(lambda: Smtp(inbox), "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1], inbox
    finally:
        server.close()


@contextlib.asynccontextmanager
async def notifier(api: RunningApi, smtp_port: int, group: str) -> AsyncIterator[Notifier]:
    notify = NotifySettings(webhook_backoff_s=0.05, smtp_port=smtp_port,
                            smtp_from="bend@test.local")
    egress = api.settings.egress.model_copy(update={"allowed_networks": ["127.0.0.0/8"]})
    settings = api.settings.model_copy(update={"notify": notify, "egress": egress})
    running = Notifier(settings, group_id=group, secrets=DictSecrets({"hook": SECRET}))
    async with running_task(running):
        yield running



async def start(api: RunningApi, definition: dict[str, Any], run_input: Any) -> str:
    wf = (await api.client.post("/api/workflows", json=definition)).json()
    r = await api.client.post(f"/api/workflows/{wf['workflow_id']}/execute",
                              json={"input": run_input},
                              params={"wait_for": wf["position"]["token"]})
    assert r.status_code == 202, r.text
    return str(r.json()["run_id"])


async def test_a_failed_run_sends_a_signed_webhook_and_an_email_once(api: RunningApi) -> None:
    receiver = Receiver()
    served = serve_in_background(receiver.app())
    hook = f"{served.url}/hook"
    definition = {
        "name": "notified",
        "steps": [{"id": "a", "type": "transform", "expression": "abs(input.n)"},
                  {"id": "ok", "type": "approval", "after": ["a"]}],
        "notifications": [
            {"events": ["run_failed"], "webhook": {"url": hook, "secret": "hook"}},
            {"events": ["run_failed"], "email": {"to": ["ops@test.local"]}},
            {"events": ["approval_waiting", "run_finished"], "webhook": {"url": hook}}]}
    try:
        async with smtp_server() as (smtp_port, inbox), \
                notifier(api, smtp_port, f"{api.settings.kafka.topic_prefix}-n1") as first:
            failed = await start(api, definition, {"n": "x"})  # abs() of a string fails
            waiting = await start(api, definition, {"n": 1})

            async def log_of(run_id: str, n: int) -> list[dict[str, Any]]:
                r = await api.client.get("/api/notifications/deliveries",
                                         params={"run_id": run_id})
                items = r.json()["items"]
                done = [d for d in items if d["status"] != "sending"]
                return items if len(done) >= n else []

            deliveries = await until(lambda: log_of(failed, 3))
            assert sorted((d["channel"], d["event"], d["status"]) for d in deliveries) == [
                ("email", "run_failed", "delivered"), ("webhook", "run_failed", "delivered"),
                ("webhook", "run_finished", "delivered")]  # the third: a failure is an end
            webhook = next(d for d in deliveries if d["event"] == "run_failed"
                           and d["channel"] == "webhook")
            assert (webhook["attempts"], webhook["response_status"]) == (2, 204)
            assert webhook["target"] == hook
            # the signed webhook
            [(headers, body)] = [g for g in receiver.got if failed.encode() in g[1]
                                 and b'"run_failed"' in g[1]]
            assert headers["x-bend-delivery"] == webhook["delivery_id"]
            assert await verify(SECRET, headers, body, time.time(), 300,
                                MemoryReplayGuard()) > 0
            # the e-mail
            [mail] = [email.message_from_bytes(m) for m in inbox]
            assert mail["To"] == "ops@test.local" and failed in mail["Subject"]
            assert "failed" in mail["Subject"] and "ExpressionError" in mail.get_payload()

            # the approval waiting (unsigned, third notification); nothing for a run that
            # did not fail on the first two
            [waits] = await until(lambda: log_of(waiting, 1))
            assert (waits["event"], waits["status"]) == ("approval_waiting", "delivered")
            r = await api.client.post(f"/api/executions/{waiting}/approvals/ok",
                                      json={"decision": "approve"})
            assert r.status_code == 202, r.text
            ended = await until(lambda: log_of(waiting, 2))
            assert sorted(d["event"] for d in ended) == ["approval_waiting", "run_finished"]
            finished = next(g for g in receiver.got if b'"run_finished"' in g[1]
                            and waiting.encode() in g[1])
            assert b'"status":"completed"' in finished[1]
            assert "x-bend-signature" not in finished[0]
            assert len(inbox) == 1
            received, first_read = len(receiver.got), first.read

        # the whole log read again by a notifier of another group: every delivery is done
        async with smtp_server() as (smtp_port, inbox), \
                notifier(api, smtp_port, f"{api.settings.kafka.topic_prefix}-n2") as again:
            async def caught_up() -> bool:
                return again.read >= first_read

            await until(caught_up)
            assert len(receiver.got) == received and inbox == []
            assert again.sent == 0
    finally:
        served.stop()
