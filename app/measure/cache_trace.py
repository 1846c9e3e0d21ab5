"""python -m app.measure cache-trace: what transformers' own cache holds per layer after the prefill.

The class in the committed config's `architectures` is built on fake tensors (app.measure.trace.build_fake)
and runs generate()'s prefill with a DynamicCache; then every cache layer's storages are measured: keys and
values (attention), conv_states and recurrent_states (transformers cache_utils.LinearAttentionLayer: Gated
DeltaNet, Mamba2, short conv). No formula of ours is involved; tests hold app.estimator.cache to these bytes.

    python -m app.measure cache-trace qwen3.5-27b qwen3-next-80b-a3b-instruct --context 1000 --batch 2
    python -m app.measure cache-trace --all      # regenerate model_specs/traces/cache/ (TABLE_ROWS' own sizes)
    python -m app.measure cache-trace deepseek-v4-flash --context 1000 32768 --batch 1 2   # one row per pair

Writes model_specs/traces/cache/<slug>.json.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

from pydantic import BaseModel, Field

from app.estimator.traces import TraceEnvironment

CACHE_TRACE_FORMAT = "vram-cache-traces/1"
# One committed config per cache family: Gated DeltaNet dense and MoE, Qwen3-Next, Mamba2 + attention (MoE
# and dense Nemotron-H), short conv (LFM2), per-layer KV geometry (Gemma 4 full layers), chunked
# attention (Llama 4), MLA latent + indexer keys (DeepSeek-V3.2; GLM-5.2 with shared-indexer layers), sliding
# + compressed (CSA, HCA) caches with compressor state (DeepSeek-V4-Flash).
TABLE_MODELS = ("qwen3.5-27b", "qwen3.6-35b-a3b", "qwen3-next-80b-a3b-instruct", "nemotron-3-nano-30b-a3b",
                "nemotron-h-56b-base-8k", "lfm2.5-vl-1.6b", "gemma-4-26b-a4b",
                "llama-4-scout-17b-16e-instruct", "deepseek-v3.2", "glm-5.2", "deepseek-v4-flash")
CONTEXT = 1000  # prompt tokens: not a multiple of the GDN chunk (64) nor of any window
BATCH = 2
# --all: models traced at their own (context, batch) pairs instead of the default one. Step-3.7-Flash (sliding
# window 512, full per-layer geometry, the whole 45-layer config on fake tensors): 32K for one sequence, far
# past its window. DeepSeek-V4-Flash: 1000 (not a multiple of its compress rates, so the buffers hold a
# remainder) and 32K (a multiple of both), 1 and 2 sequences.
TABLE_ROWS: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {"step-3.7-flash": ((32_768,), (1,)),
                                                                  "deepseek-v4-flash": ((1000, 32768), (1, 2))}
TABLE_MODELS += ("step-3.7-flash",)


class LayerBytes(BaseModel):
    index: int
    cache_class: str = Field(description="transformers cache layer class of this layer.")
    kv_bytes: int = Field(description="Distinct storages of keys and values (and DSA indexer keys).")
    conv_bytes: int = Field(description="Distinct storages of conv_states.")
    recurrent_bytes: int = Field(description="Distinct storages of recurrent_states.")
    compressed_bytes: int = Field(0, description="Distinct storages of compressed_kv (DeepSeek-V4 CSA / HCA "
                                                 "compressed entries and CSA indexer keys).")
    compressor_bytes: int = Field(0, description="Distinct storages of the DeepSeek-V4 compressor's buffer_kv, "
                                                 "buffer_gate, overlap_kv and overlap_gate.")


class CacheTraceRow(BaseModel):
    model: str
    quantization: str = Field(description="Weight dtype slug the class was built in.")
    context: int
    batch: int
    architecture: str
    layers: list[LayerBytes]
    seconds: float

    @property
    def kv_bytes(self) -> int:
        return sum(x.kv_bytes for x in self.layers)

    @property
    def state_bytes(self) -> int:
        return sum(x.conv_bytes + x.recurrent_bytes for x in self.layers)

    @property
    def compressed_bytes(self) -> int:
        return sum(x.compressed_bytes + x.compressor_bytes for x in self.layers)


class CacheTraceFile(BaseModel):
    format: str = CACHE_TRACE_FORMAT
    model: str
    environment: TraceEnvironment
    rows: list[CacheTraceRow]


def _storages(tensors) -> dict[int, int]:
    import torch
    from torch.distributed._tools.common_utils import get_untyped_storages

    seen: dict[int, int] = {}
    for t in tensors:
        if isinstance(t, torch.Tensor):
            for st in get_untyped_storages(t):
                seen[st._cdata] = st.nbytes()
    return seen


def layer_bytes(cache) -> list[LayerBytes]:
    """Per cache layer: K/V storages and the linear-attention layer's conv / recurrent state storages."""
    out = []
    for i, layer in enumerate(cache.layers):
        kv = _storages((getattr(layer, "keys", None), getattr(layer, "values", None),
                        getattr(layer, "indexer_keys", None)))  # DynamicIndexedLayer (DSA indexer keys)
        conv = _storages((getattr(layer, "conv_states", None) or {}).values())
        rec = _storages((getattr(layer, "recurrent_states", None) or {}).values())
        # DeepseekV4HCACache / DeepseekV4CSACache: dicts keyed "compressor" (and "indexer")
        compressed = _storages((getattr(layer, "compressed_kv", None) or {}).values())
        compressor = _storages(t for name in ("buffer_kv", "buffer_gate", "overlap_kv", "overlap_gate")
                               for t in (getattr(layer, name, None) or {}).values())
        out.append(LayerBytes(index=i, cache_class=type(layer).__name__, kv_bytes=sum(kv.values()),
                              conv_bytes=sum(conv.values()), recurrent_bytes=sum(rec.values()),
                              compressed_bytes=sum(compressed.values()), compressor_bytes=sum(compressor.values())))
    return out


def prefill_cache(model, batch: int, context: int):
    """generate()'s prefill (as app.measure.trace.generate_two_steps drives it); returns the cache."""
    import torch
    from transformers.cache_utils import DynamicCache

    ids = torch.zeros(batch, context, dtype=torch.long)
    kwargs = {"attention_mask": torch.ones(batch, context, dtype=torch.long), "use_cache": True}
    kwargs["position_ids"] = model._prepare_position_ids_for_generation(ids, kwargs)
    kwargs["attention_mask"] = None  # generate() drops an all-ones mask (no padding)
    if model._supports_logits_to_keep():
        kwargs["logits_to_keep"] = 1
    kwargs["cache"] = DynamicCache(config=model.config.get_text_config(decoder=True))
    inputs = model.prepare_inputs_for_generation(ids, is_first_iteration=True, **kwargs)
    with torch.no_grad():
        out = model(**inputs, return_dict=True)
    return out.cache if "cache" in out else out.past_key_values


def trace_cache(slug: str, context: int = CONTEXT, batch: int = BATCH, dtype: str = "bf16") -> CacheTraceRow:
    from torch._subclasses.fake_tensor import FakeTensorMode

    from app.catalog import load_catalog
    from app.measure.trace import build_fake, config_for

    spec = load_catalog().model(slug)
    config = config_for(spec)
    t0 = time.perf_counter()
    with FakeTensorMode():
        model = build_fake(config, dtype)
        cache = prefill_cache(model, batch, context)
        layers = layer_bytes(cache)
    return CacheTraceRow(model=slug, quantization=dtype, context=context, batch=batch,
                         architecture=type(model).__name__, layers=layers,
                         seconds=round(time.perf_counter() - t0, 2))


def main(argv: list[str]) -> int:
    from app.measure.trace_cli import TRACES_DIR, environment

    p = argparse.ArgumentParser(prog="python -m app.measure cache-trace")
    p.add_argument("models", nargs="*")
    p.add_argument("--all", action="store_true", help="regenerate model_specs/traces/cache/ for TABLE_MODELS")
    p.add_argument("--context", type=int, nargs="+", default=[CONTEXT], help="prompt lengths (one row each)")
    p.add_argument("--batch", type=int, nargs="+", default=[BATCH], help="batch sizes (one row each)")
    args = p.parse_args(argv)
    models = list(TABLE_MODELS) if args.all else args.models
    out_dir = Path(TRACES_DIR) / "cache"
    out_dir.mkdir(parents=True, exist_ok=True)
    command = "python -m app.measure cache-trace " + shlex.join(argv)
    for slug in models:
        contexts, batches = TABLE_ROWS.get(slug, (args.context, args.batch)) if args.all else (args.context,
                                                                                                args.batch)
        rows = [trace_cache(slug, context, batch) for context in contexts for batch in batches]
        f = CacheTraceFile(model=slug, environment=environment(command), rows=rows)
        (out_dir / f"{slug}.json").write_text(json.dumps(f.model_dump(), indent=1) + "\n")
        for row in rows:
            print(f"{slug} {row.context} x {row.batch}: {row.architecture} KV {row.kv_bytes:,} B, state "
                  f"{row.state_bytes:,} B, compressed {row.compressed_bytes:,} B ({row.seconds} s)", file=sys.stderr)
    return 0
