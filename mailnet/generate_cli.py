"""``mailnet generate``: a scenario written out as an ordinary scenario file, an
``[internet]`` world generated and every default filled in."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from mailnet.errors import ScenarioError


def register(app: typer.Typer) -> None:
    """Add the ``generate`` command to ``app``."""
    app.command(name="generate")(generate)


def generate(
    scenario: Annotated[Path, typer.Argument(help="Scenario TOML file.")],
    *,
    out: Annotated[Path, typer.Option(help="Scenario file to write.")],
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a key: KEY=VALUE (TOML dotted key and value)."),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace OUT if it exists.")] = False,
) -> None:
    """Write SCENARIO as an ordinary scenario file (its \\[internet] world generated, every
    default written): loading OUT gives the same world, and running it the same tables."""
    from mailnet.cli import load_with_notices  # noqa: PLC0415 (a cycle)

    try:
        if out.exists() and not force:
            raise ScenarioError(str(out), "", "exists already; give --force to replace it")
        loaded = load_with_notices(scenario, set_ or [])
    except ScenarioError as error:
        typer.echo(f"mailnet: error: {error}", err=True)
        raise typer.Exit(code=2) from None
    text = loaded.to_toml(out_dir=out.parent, base_dir=scenario.parent)
    partial = out.with_name(out.name + ".partial")
    try:
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, out)
    except OSError as error:
        partial.unlink(missing_ok=True)
        typer.echo(f"mailnet: error: {out}: cannot write ({error.strerror or error})", err=True)
        raise typer.Exit(code=2) from None
    typer.echo(
        f"wrote {out}: {len(loaded.providers):,} providers, {len(loaded.senders):,} sender "
        f"groups, {len(loaded.domains):,} domains, {len(loaded.servers):,} servers"
    )
