"""The `vram` command (console script; also `python -m app.cli`). See app.cli.commands."""

import os

# pydantic looks for plugins (it scans the entry points of every installed distribution) when it builds its first
# model: a visible part of a `vram` start, for plugins (observability hooks) the command has no use for. Set
# PYDANTIC_DISABLE_PLUGINS to an empty string to load them (pydantic/plugin/_loader.py get_plugins).
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

from app.cli.commands import cli, main  # noqa: E402  (after the setting above)

__all__ = ["cli", "main"]
