"""`bend deploy topics OVERLAY` (Strimzi topics from topics as code), `bend deploy check
OVERLAY`."""

from __future__ import annotations

from pathlib import Path

import click

from bend.deploy.errors import ManifestsInvalid

__all__ = ["deploy"]

_OVERLAY = click.Path(exists=True, file_okay=False, path_type=Path)


@click.group()
def deploy() -> None:
    """Bend's Kubernetes manifests (deploy/k8s)."""


@deploy.command()
@click.argument("overlay", type=_OVERLAY)
@click.option("--check", is_flag=True,
              help="Write nothing; exit 1 if the overlay's topics file is not up to date.")
def topics(overlay: Path, check: bool) -> None:
    """Write OVERLAY/kafka-topics.yaml: a KafkaTopic per Bend topic, for its settings."""
    from bend.deploy.topics import TOPICS_FILE, overlay_topics

    text = overlay_topics(overlay)
    target = overlay / TOPICS_FILE
    if check:
        if not target.exists() or target.read_text() != text:
            raise click.ClickException(f"{target} is out of date: run `bend deploy topics "
                                       f"{overlay}`")
        click.echo(f"{target} is up to date")
        return
    target.write_text(text)
    click.echo(f"wrote {target}")


@deploy.command()
@click.argument("overlay", type=_OVERLAY)
def check(overlay: Path) -> None:
    """Render OVERLAY with kustomize and validate every object against its schema, offline."""
    from bend.deploy.kustomize import render
    from bend.deploy.validate import KUBERNETES_VERSION, Validator

    objects = render(overlay)
    problems = Validator().problems(objects)
    if problems:
        raise ManifestsInvalid(problems)
    click.echo(f"{len(objects)} objects valid (Kubernetes {KUBERNETES_VERSION} and CRD schemas)")
