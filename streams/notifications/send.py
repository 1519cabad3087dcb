"""Sending one delivery: a signed webhook POST with retries and back-off, or an SMTP e-mail.

A webhook body is JSON; `X-Bend-Signature: t=<unix s>,v1=<hex>` signs `<t>.<body>` with
HMAC-SHA256 under the notification's secret, as inbound webhooks are signed
(bend.security.webhooks), and `X-Bend-Delivery` carries the delivery id, the same on every try
and on a redelivery, so a receiver can drop duplicates. 5xx, 408, 429 and transport errors are
tried again, waiting `webhook_backoff_s` then twice as long each time; other 4xx and an address
the egress policy refuses (BEND_EGRESS__ALLOWED_NETWORKS) are final.
E-mail goes through smtplib in a thread (no async SMTP client is among the dependencies).
"""

from __future__ import annotations

import asyncio
import json
import smtplib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

import httpx
import structlog

from bend.core.errors import BendError
from bend.security.webhooks import SIGNATURE_HEADER, sign
from bend.settings import NotifySettings

__all__ = ["DELIVERY_HEADER", "Outcome", "send_email", "send_webhook"]

log = structlog.get_logger(__name__)

DELIVERY_HEADER = "X-Bend-Delivery"
_RETRIED = frozenset({408, 425, 429})


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a delivery went: delivered or not, after how many tries, with the last answer."""

    delivered: bool
    attempts: int
    response_status: int | None = None
    error: str | None = None


async def send_webhook(http: httpx.AsyncClient, settings: NotifySettings, url: str,
                       body: dict[str, Any], secret: str | None, *,
                       sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> Outcome:
    """POST `body` to `url`, signed with `secret` if any, retrying with back-off."""
    payload = json.dumps(body, separators=(",", ":"), sort_keys=True, default=str).encode()
    wait = settings.webhook_backoff_s
    status: int | None = None
    error: str | None = None
    for attempt in range(1, settings.webhook_attempts + 1):
        headers = {"Content-Type": "application/json", DELIVERY_HEADER: body["delivery_id"]}
        if secret:
            headers[SIGNATURE_HEADER] = sign(secret, int(time.time()), payload)
        try:
            response = await http.post(url, content=payload, headers=headers,
                                       timeout=settings.webhook_timeout_s)
        except BendError as exc:  # the egress policy refuses the address: final
            return Outcome(False, attempt, None, exc.message)
        except httpx.HTTPError as exc:
            status, error = None, f"{type(exc).__name__}: {exc}"
        else:
            status = response.status_code
            if response.is_success:
                return Outcome(True, attempt, status)
            error = f"answered {status}: {response.text[:200]}"
            if status < 500 and status not in _RETRIED:
                return Outcome(False, attempt, status, error)  # a retry cannot fix it
        log.info("webhook_retry", delivery_id=body["delivery_id"], attempt=attempt,
                 error=error, wait_s=wait)
        if attempt < settings.webhook_attempts:
            await sleep(wait)
            wait = min(wait * 2, settings.webhook_max_backoff_s)
    return Outcome(False, settings.webhook_attempts, status, error)


def _message(settings: NotifySettings, to: tuple[str, ...], body: dict[str, Any]) -> EmailMessage:
    message = EmailMessage()
    what = {"run_failed": "failed", "run_finished": f"finished ({body.get('status')})",
            "approval_waiting": f"waits for an approval of step {body.get('step_id')}"}
    message["Subject"] = (f"[bend] run {body['run_id']} of {body['workflow_id']} "
                          f"{what.get(body['event'], body['event'])}")
    message["From"] = settings.smtp_from
    message["To"] = ", ".join(to)
    message["Message-ID"] = f"<{body['delivery_id']}@bend>"
    message[DELIVERY_HEADER] = body["delivery_id"]
    message.set_content(json.dumps(body, indent=2, sort_keys=True, default=str))
    return message


def _smtp_send(settings: NotifySettings, message: EmailMessage) -> None:
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port,
                      timeout=settings.smtp_timeout_s) as smtp:
        if settings.smtp_starttls:
            smtp.starttls()
        if settings.smtp_username:
            password = settings.smtp_password.get_secret_value() \
                if settings.smtp_password else ""
            smtp.login(settings.smtp_username, password)
        smtp.send_message(message)


async def send_email(settings: NotifySettings, to: tuple[str, ...], body: dict[str, Any], *,
                     sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> Outcome:
    """Mail `body` to `to` over the configured SMTP server, retrying with back-off."""
    message = _message(settings, to, body)
    wait = settings.webhook_backoff_s
    error: str | None = None
    for attempt in range(1, settings.smtp_attempts + 1):
        try:
            await asyncio.to_thread(_smtp_send, settings, message)
        except (OSError, smtplib.SMTPException) as exc:
            error = f"{type(exc).__name__}: {exc}"
            if isinstance(exc, smtplib.SMTPResponseException) and 500 <= exc.smtp_code < 600:
                return Outcome(False, attempt, exc.smtp_code, error)  # refused for good
        else:
            return Outcome(True, attempt)
        if attempt < settings.smtp_attempts:
            await sleep(wait)
            wait = min(wait * 2, settings.webhook_max_backoff_s)
    return Outcome(False, settings.smtp_attempts, None, error)
