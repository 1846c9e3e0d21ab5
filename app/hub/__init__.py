"""The Hugging Face Hub client: one public door (this module); callers outside import only from `app.hub`.

    _client.py       config.json (+ the safetensors index) of a repo, pinned to a commit; the transport
                     and its safety rules (one host plus the Hub's file CDNs, timeouts, size caps, LRU cache)
    _gguf.py         GGUF headers over HTTP range requests, never the tensor data
    _gguf_layout.py  where a GGUF header ends, walked from its first bytes; the header parsed by `gguf`
    _models.py       the door the API and the `vram` command use for `model` + `config`: catalog first,
                     then the Hub
    _names.py        repo ids, revisions and file names as the Hub accepts them
    _errors.py       the typed errors (404, 422 or 503, never a 500), drawn in its docstring

Web-free and synchronous (httpx); imports the estimator and the catalog, nothing of the web or the CLI.
"""

from app.hub._errors import (
    HubBadFile,
    HubBadInput,
    HubDisabled,
    HubError,
    HubGated,
    HubNotFound,
    HubRefused,
    HubUnavailable,
)
from app.hub._models import estimate_for, spec_for
from app.hub._names import HF_FILE_PATTERN

# httpx (the client) and gguf + numpy (headers) load on first use, not with the door: `vram estimate` on a
# catalog model starts without them
_LAZY = {"HubConfig": "_client", "HubSettings": "_client", "fetch_config": "_client", "GgufHeader": "_gguf",
         "fetch_gguf_header": "_gguf"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f"app.hub.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'app.hub' has no attribute {name!r}")


__all__ = [
    "HF_FILE_PATTERN",
    "GgufHeader",
    "HubBadFile",
    "HubBadInput",
    "HubConfig",
    "HubDisabled",
    "HubError",
    "HubGated",
    "HubNotFound",
    "HubRefused",
    "HubSettings",
    "HubUnavailable",
    "estimate_for",
    "fetch_config",
    "fetch_gguf_header",
    "spec_for",
]
