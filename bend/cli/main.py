"""The `bend` command: one group, a module per subcommand family."""

from __future__ import annotations

import sys

import click

from bend import __version__
from bend.core.errors import BendError
from bend.log import configure_logging
from bend.settings import get_settings

__all__ = ["cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="bend")
def cli() -> None:
    """Bend: an event-sourced orchestrator for AI-agent workflows on Kafka."""
    settings = get_settings()
    configure_logging(settings.log.level, settings.log.format)


def _register() -> None:
    """Attach every subcommand family that is installed."""
    import importlib

    for module, name in (("bend.cli.dev", "dev"), ("bend.cli.demo", "demo"),
                         ("bend.cli.worker", "worker")):
        cli.add_command(getattr(importlib.import_module(module), name))


_register()


def main() -> None:
    """Console entry point: typed errors become one clear line and exit code 1."""
    try:
        cli.main(standalone_mode=False)
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
