"""The `gguf` package's constants (GGML types, block sizes, file types) without the package's __init__, which
imports numpy and the file reader/writer (about half of a cold `vram` start). The estimator needs only these
tables; the module is registered as `gguf.constants`, so a later `import gguf` (reading a file) reuses it."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType


def _load() -> ModuleType:
    loaded = sys.modules.get("gguf.constants")
    if loaded is not None:
        return loaded
    package = importlib.util.find_spec("gguf")  # finds the package without running its __init__
    if package is None or not package.submodule_search_locations:
        raise ImportError("the gguf package is not installed")
    path = Path(next(iter(package.submodule_search_locations))) / "constants.py"
    spec = importlib.util.spec_from_file_location("gguf.constants", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["gguf.constants"] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules["gguf.constants"]
        raise
    return module


_gguf = _load()
GGML_QUANT_SIZES = _gguf.GGML_QUANT_SIZES
GGMLQuantizationType = _gguf.GGMLQuantizationType
GGUF_DEFAULT_ALIGNMENT = _gguf.GGUF_DEFAULT_ALIGNMENT
LlamaFileType = _gguf.LlamaFileType
