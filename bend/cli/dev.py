"""`bend dev up|down|status`: the local Kafka and Postgres, without Docker."""

from __future__ import annotations

import time

import click

from bend.cli.errors import clear_errors
from bend.devstack import kafka, stack
from bend.settings import Settings, get_settings

__all__ = ["dev"]


@click.group()
def dev() -> None:
    """Run the local stack (Kafka, Postgres) from the project's state dir."""


@dev.command()
@clear_errors
def up() -> None:
    """Start Kafka and Postgres (a no-op for what already runs)."""
    started = time.monotonic()
    settings = get_settings()
    for outcome in stack.up(settings):
        click.echo(outcome.describe())
    seconds = time.monotonic() - started
    click.echo(f"stack up in {seconds:.1f} s (state in {settings.dev.state_dir})")
    if settings.kafka.bootstrap != kafka.bootstrap(settings):
        click.secho(
            f"note: clients use BEND_KAFKA__BOOTSTRAP={settings.kafka.bootstrap}, not this "
            f"broker at {kafka.bootstrap(settings)}; set it to match",
            fg="yellow",
            err=True,
        )


@dev.command()
@clear_errors
def down() -> None:
    """Stop Kafka and Postgres by the PIDs `up` recorded."""
    for outcome in stack.down(get_settings()):
        click.echo(outcome.describe())


def _projection_lag(settings: Settings) -> str:
    """The live read models' lag in words (`caught up`, `behind by 9 records (2 s)`)."""
    import asyncio

    import asyncpg

    from projections.lag import describe, read_lag

    try:
        return describe(asyncio.run(asyncio.wait_for(read_lag(settings), 10)))
    except asyncpg.UndefinedTableError:
        return (f"no read models in schema {settings.database.schema_name} yet (start a "
                "projector: `python -m projections run`)")
    except Exception as err:  # a status line, not a failure of the stack
        return f"lag unknown ({type(err).__name__}: {str(err)[:200]})"


@dev.command()
@clear_errors
def status() -> None:
    """Show whether Kafka and Postgres run and answer, and how far the read models trail the
    log; exit code 1 if Kafka or Postgres does not answer."""
    settings = get_settings()
    statuses = stack.status(settings)
    for service in statuses:
        click.echo(service.describe())
    if all(s.running and s.answering for s in statuses):
        click.echo(f"projections: {_projection_lag(settings)}")
    if not all(s.running and s.answering for s in statuses):
        # An error, not ctx.exit(1): click returns (not raises) Exit codes when not standalone.
        raise click.ClickException("the stack is not fully up; start it with `bend dev up`")
