"""The `joe` command line (typer + rich)."""
