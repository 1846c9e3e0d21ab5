"""Upper bounds every source of a model spec is held to (config.json, a GGUF header, a pasted log).

They keep a hostile input from making the per-layer and per-tensor loops run for ever or an estimate
absurd; each is far above any released model (DeepSeek-V3: 61 layers, 256 experts, hidden 7168;
Gemma 3: 262,144 vocab; Llama 4 Scout: 10M context).
"""

from __future__ import annotations

LIMITS = {"layers": 1024, "experts": 4096, "width": 1 << 20, "vocab": 1 << 24, "context": 1 << 28}
