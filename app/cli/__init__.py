"""The `vram` command (console script; also `python -m app.cli`). See app.cli.commands."""

import gc
import os
import sys
from types import ModuleType

# A `vram` start imports pydantic, typer and the estimator: some 54,000 objects the cyclic collector tracks
# (gc.get_freeze_count() after them), none of them garbage. The collector would walk them in the passes their
# allocation triggers while they load, and again when the interpreter exits; paused during the imports, with what
# they built frozen afterwards (as app/main.py does for the server), it does neither. bench/bench_cli.py measures it.
_collecting = gc.isenabled()
gc.disable()

# pydantic looks for plugins (it scans the entry points of every installed distribution) when it builds its first
# model: a visible part of a `vram` start, for plugins (observability hooks) the command has no use for. Set
# PYDANTIC_DISABLE_PLUGINS to an empty string to load them (pydantic/plugin/_loader.py get_plugins).
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
if os.environ["PYDANTIC_DISABLE_PLUGINS"] in ("__all__", "1", "true") and "pydantic.plugin._loader" not in sys.modules:
    # With every plugin disabled, pydantic's loader answers no plugins without scanning anything, yet importing it
    # imports importlib.metadata (email, zipfile, csv, tempfile: about 20 ms of a 0.3 s start). Its one function,
    # as pydantic 2.14's pydantic/plugin/_loader.py answers under this setting (pydantic/plugin/_schema_validator.py
    # imports nothing else from it; tests/test_cli.py holds the command to pydantic's own answer).
    _loader = ModuleType("pydantic.plugin._loader")
    _loader.get_plugins = lambda: ()  # type: ignore[attr-defined]
    sys.modules["pydantic.plugin._loader"] = _loader

try:
    from app.cli.commands import cli, main  # noqa: E402  (after the setting above)
finally:
    gc.freeze()
    if _collecting:
        gc.enable()

__all__ = ["cli", "main"]
