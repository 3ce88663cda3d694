"""`joe` — the command line entry point. Subcommands are mounted from one module per concern."""

from __future__ import annotations

import typer

from joe import __version__

app = typer.Typer(help="Joe: market research and trading engine (paper by default).", no_args_is_help=True)


@app.command()
def version() -> None:
    """Print Joe's version."""
    typer.echo(__version__)


@app.command()
def run(once: bool = typer.Option(False, "--once", help="Run the pipeline once and exit.")) -> None:
    """Run the research pipeline (not built yet)."""
    typer.echo("pipeline not built yet")
    raise typer.Exit(2)


if __name__ == "__main__":
    app()
