"""`bend worker`: run the Faust roles that execute runs."""

from __future__ import annotations

import click

from bend.settings import get_settings

__all__ = ["worker"]


@click.command("worker")
@click.argument("roles", nargs=-1,
                type=click.Choice(["orchestrator", "executor", "triggers", "all"]))
def worker(roles: tuple[str, ...]) -> None:
    """Run the orchestrator, executor and/or triggers agents in this process (default: all)."""
    from streams.worker import ROLES, run_worker

    chosen = ROLES if not roles or "all" in roles else roles
    run_worker(chosen, get_settings())
