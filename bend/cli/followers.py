"""`bend notifier run` and `bend chainer run`: the processes that follow the run log in groups
of their own (streams/follow.py), each with its ops server (/metrics, /livez, /readyz on
BEND_OPS__HOST:PORT)."""

from __future__ import annotations

import click

__all__ = ["chainer", "notifier"]


@click.group()
def notifier() -> None:
    """The notifier: sends the webhooks and emails runs' workflows ask for."""


@notifier.command("run")
def run_notifier() -> None:
    """Send what runs' `notifications` ask for, until stopped."""
    from streams.follow import serve
    from streams.notifications.notifier import Notifier

    raise SystemExit(serve(Notifier, "streams.notifications", ["run"]))


@click.group()
def chainer() -> None:
    """The chainer: starts the downstream workflows a run names when it ends."""


@chainer.command("run")
def run_chainer() -> None:
    """Start the downstream runs of ended runs, until stopped."""
    from streams.chaining import Chainer
    from streams.follow import serve

    raise SystemExit(serve(Chainer, "streams.chaining", ["run"]))
