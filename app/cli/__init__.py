"""The `vram` command (console script; also `python -m app.cli`). See app.cli.commands."""

from app.cli.commands import cli, main

__all__ = ["cli", "main"]
