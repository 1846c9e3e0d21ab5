"""Runs INSIDE a vLLM virtualenv (see app/measure/vllm_mtp.py): vLLM's multi-token-prediction draft as
`--speculative-config '{"method": "mtp", "num_speculative_tokens": N}'` loads it, built on the meta device.

For each model: vLLM's own SpeculativeConfig(method="mtp") turns the target's config into the draft's
(config/speculative.py: model_type -> deepseek_mtp / qwen3_next_mtp / glm4_moe_mtp / mimo_mtp ...); the target
model class is built first (its attention layers registered), then the draft class as the proposer builds it
(v1/spec_decode/llm_base_proposer.py _get_model -> model_loader initialize_model(vllm_config, draft model_config)).
Reported:
* the draft's parameters, and those the proposer replaces by the target's (load_model: _maybe_share_embeddings
  deletes the draft's model.embed_tokens for an MTP model, _maybe_share_lm_head its lm_head and every layer's
  shared_head.head): what stays is what the draft adds to the GPU, as gpu_model_runner.load_model measures it
  (DeviceMemoryProfiler after empty_cache: allocated bytes);
* every layer's KV cache spec (vllm/v1/worker/gpu/attn_utils.py get_kv_cache_spec over the target's and the
  draft's layers), the draft's layers named apart;
* vLLM's KVCacheConfig for one budget with and without the draft's layers (get_kv_cache_configs,
  get_kv_cache_capacity), GPU-equivalent inputs as app/measure/vllm_plan_worker.py.

Imports only the standard library, torch, vllm and its sibling vllm_plan_worker.py (never our app).
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
import traceback

os.environ.setdefault("VLLM_TARGET_DEVICE", "cpu")
os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")

import vllm_plan_worker as pw  # noqa: E402  (same folder: the script's directory is first on sys.path)
import vllm_weights_worker as ww  # noqa: E402

# what LLMBaseProposer.load_model replaces by the target's module for an MTP draft (0.32 / 0.34:
# _maybe_share_embeddings, _maybe_share_lm_head)
SHARED = re.compile(r"^(model\.embed_tokens\.|lm_head\.|model\.layers\.[^.]+\.shared_head\.head\.)")


def _build(vc) -> tuple[dict, set, dict]:
    import torch
    from vllm.config import set_current_vllm_config
    from vllm.model_executor.model_loader.utils import get_model_architecture
    from vllm.platforms.interface import Platform
    from vllm.utils.torch_utils import set_default_torch_dtype
    from vllm.v1.worker.gpu.attn_utils import get_kv_cache_spec

    pw._init_distributed(vc)
    cls, _ = get_model_architecture(vc.model_config)
    with set_current_vllm_config(vc), set_default_torch_dtype(vc.model_config.dtype), torch.device("meta"):
        cls(vllm_config=vc, prefix="")
    target_layers = set(vc.compilation_config.static_forward_context)
    draft_mc = vc.speculative_config.draft_model_config
    dcls, _ = get_model_architecture(draft_mc)
    with set_current_vllm_config(vc), set_default_torch_dtype(draft_mc.dtype), torch.device("meta"):
        draft = dcls(vllm_config=vc, prefix="")
    params = {"architecture": dcls.__name__, "all_bytes": 0, "shared_bytes": 0, "own_bytes": 0, "params": []}
    for name, p in draft.named_parameters():
        size = p.numel() * p.element_size()
        shared = bool(SHARED.match(name))
        params["all_bytes"] += size
        params["shared_bytes" if shared else "own_bytes"] += size
        params["params"].append([name, list(p.shape), str(p.dtype).removeprefix("torch."), size, shared])
    if vc.model_config.is_hybrid:
        orig = Platform._find_non_ssm_backends
        Platform._find_non_ssm_backends = classmethod(lambda c, v: [pw._GpuLikeBackend])
        try:
            Platform._align_hybrid_block_size(vc, pw._GpuLikeBackend)
        finally:
            Platform._find_non_ssm_backends = orig
    pw._gpu_like_backends(vc)
    with set_current_vllm_config(vc):
        specs = get_kv_cache_spec(vc)
    return specs, target_layers, params


def _draft_rank(model_dir: str, tp: int, ep: bool) -> dict:
    """The draft's parameters on rank 0 of a tensor (and expert) parallel deployment: the parallel groups faked
    as app/measure/vllm_weights_worker.py does; only the draft class is built."""
    import torch
    from vllm.config import (
        LoadConfig,
        ModelConfig,
        ParallelConfig,
        SpeculativeConfig,
        VllmConfig,
        set_current_vllm_config,
    )
    from vllm.model_executor.model_loader.utils import get_model_architecture
    from vllm.utils.torch_utils import set_default_torch_dtype

    mc = ModelConfig(model=model_dir, skip_tokenizer_init=True, dtype="bfloat16", max_model_len=4096,
                     enforce_eager=True)
    pc = ParallelConfig(tensor_parallel_size=tp, enable_expert_parallel=ep)
    sc = SpeculativeConfig(method="mtp", num_speculative_tokens=1, target_model_config=mc, target_parallel_config=pc)
    vc = VllmConfig(model_config=mc, parallel_config=pc, speculative_config=sc,
                    load_config=LoadConfig(load_format="dummy"))
    ww._init_distributed(VllmConfig(model_config=mc, parallel_config=ParallelConfig(),
                                    load_config=LoadConfig(load_format="dummy")))
    ww._fake_groups(tp, 1, ep)
    draft_mc = vc.speculative_config.draft_model_config
    cls, _ = get_model_architecture(draft_mc)
    with set_current_vllm_config(vc), set_default_torch_dtype(draft_mc.dtype), torch.device("meta"):
        draft = cls(vllm_config=vc, prefix="")
    own = shared = 0
    for name, p in draft.named_parameters():
        size = p.numel() * p.element_size()
        if SHARED.match(name):
            shared += size
        else:
            own += size
    return {"tp": tp, "ep": ep, "own_bytes": own, "shared_bytes": shared}


def run_model(m: dict, common: dict) -> dict:
    out = {"name": m["name"], "settings": []}
    for n in m["num_speculative_tokens"]:
        row = {"num_speculative_tokens": n}
        t0 = time.time()
        try:
            vc = pw._vllm_config(m["dir"], common["max_model_len"], common["block_size"], "auto",
                                 common["max_num_batched_tokens"], mtp_tokens=n)
            specs, target_layers, params = _build(vc)
            draft_names = [k for k in specs if k not in target_layers]
            target_specs = {k: v for k, v in specs.items() if k in target_layers}
            row["draft_model_type"] = vc.speculative_config.draft_model_config.hf_config.model_type
            row["draft_weights"] = params
            row["draft_layers"] = {k: pw._spec_fields(specs[k], vc) for k in draft_names}
            for k in draft_names:
                s = specs[k]
                row["draft_layers"][k]["bytes_per_token"] = s.page_size_bytes // s.block_size
            row["target_layer_kinds"] = pw._layer_kinds(target_specs, vc)
            row["block_size"] = vc.cache_config.block_size
            row["plan_with_draft"] = pw._plan(vc, specs, common["max_model_len"], common["kv_bytes"])
            row["plan_target_only"] = pw._plan(vc, target_specs, common["max_model_len"], common["kv_bytes"])
        except Exception as e:  # noqa: BLE001 - reported in the table, the run goes on
            traceback.print_exc()
            row["error"] = f"{type(e).__name__}: {e}"[:600]
        pw.log(f"{m['name']} n={n}: {row.get('draft_weights', {}).get('own_bytes', row.get('error'))} "
               f"({time.time() - t0:.1f}s)")
        out["settings"].append(row)
    for tp, ep in m.get("ranks", []):
        try:
            row = _draft_rank(m["dir"], tp, ep)
        except Exception as e:  # noqa: BLE001
            traceback.print_exc()
            row = {"tp": tp, "ep": ep, "error": f"{type(e).__name__}: {e}"[:600]}
        pw.log(f"{m['name']} draft tp={tp} ep={ep}: {row.get('own_bytes', row.get('error'))}")
        out.setdefault("ranks", []).append(row)
    return out


def main() -> int:
    job = json.load(sys.stdin)
    if job["common"].get("skip_cpu_platform_check"):
        pw._skip_cpu_platform_check()
    t0 = time.time()
    import torch
    import transformers
    import vllm

    result = {"versions": {"vllm": vllm.__version__, "torch": torch.__version__,
                           "transformers": transformers.__version__, "python": sys.version.split()[0]},
              "models": [run_model(m, job["common"]) for m in job["models"]]}
    result["seconds"] = round(time.time() - t0, 1)
    json.dump(result, sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
