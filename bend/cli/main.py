"""The `bend` command: one group, a module per subcommand family, imported when used."""

from __future__ import annotations

import importlib
import sys

import click

from bend import __version__
from bend.core.errors import BendError
from bend.log import configure_logging
from bend.settings import get_settings

__all__ = ["cli", "main"]

# name -> "module:attribute"; a family is imported only when its command runs.
SUBCOMMANDS: dict[str, str] = {
    "dev": "bend.cli.dev:dev",
    "demo": "bend.cli.demo:demo",
    "worker": "bend.cli.worker:worker",
    "serve": "bend.cli.serve:serve",
    "projector": "projections.cli:projector",
    "archive": "bend.archive.cli:archive",
    "notifier": "bend.cli.followers:notifier",
    "chainer": "bend.cli.followers:chainer",
    "api": "bend.server.cli:api",
    "workflows": "bend.cli.workflows:workflows",
    "run": "bend.cli.runs:run",
    "runs": "bend.cli.runs:runs",
    "approvals": "bend.cli.approvals:approvals",
    "components": "bend.cli.components:components",
    "mcp": "bend.cli.mcp:mcp",
    "triggers": "bend.cli.triggers:triggers",
    "keys": "bend.cli.keys:keys",
    "audit": "bend.cli.audit:audit",
    "replay": "bend.cli.replay:replay",
    "backtest": "bend.cli.backtest:backtest",
    "dead-letters": "bend.cli.dead_letters:dead_letters",
    "deploy": "bend.deploy.cli:deploy",
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use, so one broken family breaks no other."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *SUBCOMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = SUBCOMMANDS.get(cmd_name)
        if target is None:
            return super().get_command(ctx, cmd_name)
        module, attr = target.split(":")
        command: click.Command = getattr(importlib.import_module(module), attr)
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="bend")
def cli() -> None:
    """Bend: an event-sourced orchestrator for AI-agent workflows on Kafka."""
    settings = get_settings()
    configure_logging(settings.log.level, settings.log.format)


def main() -> None:
    """Console entry point: typed errors become one clear line and exit code 1."""
    try:
        code = cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except BendError as exc:
        click.secho(f"error: {exc}", fg="red", err=True)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)
