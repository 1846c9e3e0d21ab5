"""Runs INSIDE a vLLM virtualenv (see app/measure/vllm_weights.py): builds each model's vLLM class on the meta
device as one rank of a tensor / data / expert parallel deployment and reports that rank's parameters (shape,
dtype, bytes) and buffers.

Imports only the standard library, torch and vllm (never our app). Reads a JSON job on stdin, writes one JSON
document to stdout (logs go to stderr).

How one rank is built without its peers: the distributed environment is one real gloo rank, then the tensor,
data and expert parallel group coordinators (vllm/distributed/parallel_state.py _TP, _DP, _EP) are given the
asked world size with this process as rank 0 of each. The layers read only those sizes and ranks while they
create their parameters (VocabParallelEmbedding, QKVParallelLinear, Merged/ColumnParallelLinear,
RowParallelLinear, FusedMoEParallelConfig.make, determine_expert_map). The weights are built as vLLM's loader
builds them (model_loader/base_loader.py: set_default_torch_dtype(model dtype), then the model class).

GPU-equivalent choices (the CPU platform would pick its own):
* MXFP4 MoE (gpt-oss): the backend an H100 (SM90) takes, Mxfp4MoeBackend.TRITON, the first of
  _get_priority_backends_for_gpt_oss (fused_moe/oracle/mxfp4.py:421-458) that runs there (FlashInfer TRT-LLM
  is SM100, AITER is ROCm); its per-partition intermediate size is round_up(., 64) (:900-901);
* unquantized MoE: vLLM's Triton default on CUDA has no rounding (oracle/unquantized.py:353-365), as the CPU
  backend has none.
"""

from __future__ import annotations

import collections
import json
import os
import re
import sys
import time
import traceback

os.environ.setdefault("VLLM_TARGET_DEVICE", "cpu")
os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")

from vllm_plan_worker import _free_port, _skip_cpu_platform_check, log  # noqa: E402  (the script's folder)


def _gpu_like_mxfp4() -> None:
    from vllm.model_executor.layers.fused_moe.oracle.mxfp4 import Mxfp4MoeBackend
    from vllm.model_executor.layers.quantization import mxfp4

    mxfp4.select_mxfp4_moe_backend = lambda moe, *a, **k: (Mxfp4MoeBackend.TRITON, None)


_READY = False


def _init_distributed(vc) -> None:
    global _READY
    from vllm.config import set_current_vllm_config
    from vllm.distributed.parallel_state import (
        destroy_model_parallel,
        ensure_model_parallel_initialized,
        init_distributed_environment,
        model_parallel_is_initialized,
    )

    with set_current_vllm_config(vc):
        if not _READY:
            init_distributed_environment(world_size=1, rank=0, local_rank=0, backend="gloo",
                                         distributed_init_method=f"tcp://127.0.0.1:{_free_port()}")
            _READY = True
        if model_parallel_is_initialized():
            destroy_model_parallel()
        ensure_model_parallel_initialized(1, 1)


def _fake_groups(tp: int, dp: int, ep: bool) -> None:
    """This process as rank 0 of groups of the asked sizes (vllm/distributed/parallel_state.py). The expert
    parallel group spans TP x DP ranks (FusedMoEParallelConfig.make: ep_size = flattened tp size)."""
    from vllm.distributed import parallel_state as ps

    for name, size in (("_TP", tp), ("_DP", dp), ("_EP", tp * dp if ep else 1)):
        group = getattr(ps, name, None)
        if group is not None:
            group.world_size, group.rank_in_group = size, 0


def _rank(model_dir: str, tp: int, dp: int, ep: bool) -> dict:
    import torch
    from vllm.config import LoadConfig, ModelConfig, ParallelConfig, VllmConfig, set_current_vllm_config
    from vllm.model_executor.model_loader.utils import get_model_architecture
    from vllm.utils.torch_utils import set_default_torch_dtype

    mc = ModelConfig(model=model_dir, skip_tokenizer_init=True, dtype="auto", max_model_len=4096,
                     enforce_eager=True)
    pc = ParallelConfig(tensor_parallel_size=tp, data_parallel_size=dp, enable_expert_parallel=ep)
    vc = VllmConfig(model_config=mc, parallel_config=pc, load_config=LoadConfig(load_format="dummy"))
    # the one real rank's groups come from a single-GPU config (a DP config would wait for its peers)
    _init_distributed(VllmConfig(model_config=mc, parallel_config=ParallelConfig(),
                                 load_config=LoadConfig(load_format="dummy")))
    _fake_groups(tp, dp, ep)
    cls, _ = get_model_architecture(vc.model_config)
    with set_current_vllm_config(vc), set_default_torch_dtype(vc.model_config.dtype), torch.device("meta"):
        model = cls(vllm_config=vc, prefix="")
    params: dict[str, list] = collections.OrderedDict()
    total = 0
    for name, p in model.named_parameters():  # shared parameters once (remove_duplicate)
        size = p.numel() * p.element_size()
        total += size
        key = re.sub(r"\.\d+\.", ".*.", name)
        row = params.setdefault(key, [list(p.shape), str(p.dtype).removeprefix("torch."), 0, 0])
        row[2] += 1
        row[3] += size
    buffers = [[n, list(b.shape), str(b.dtype).removeprefix("torch."), b.numel() * b.element_size()]
               for n, b in model.named_buffers() if b.numel() > 1]
    return {"params_bytes": total, "params": [[k, *v] for k, v in params.items()], "buffers": buffers,
            "architecture": vc.model_config.architecture, "dtype": str(vc.model_config.dtype).removeprefix("torch."),
            "quantization": vc.model_config.quantization}


def main() -> int:
    job = json.load(sys.stdin)
    if job.get("skip_cpu_platform_check"):
        _skip_cpu_platform_check()
    t0 = time.time()
    import torch
    import transformers
    import vllm

    _gpu_like_mxfp4()
    result = {"versions": {"vllm": vllm.__version__, "torch": torch.__version__,
                           "transformers": transformers.__version__, "python": sys.version.split()[0]},
              "models": []}
    for m in job["models"]:
        out = {"name": m["name"], "settings": []}
        for s in m["settings"]:
            row = dict(s)
            t = time.time()
            try:
                row.update(_rank(m["dir"], s["tp"], s["dp"], s["ep"]))
            except Exception as e:  # noqa: BLE001
                traceback.print_exc()
                row["error"] = f"{type(e).__name__}: {e}"[:600]
            log(f"{m['name']} tp={s['tp']} dp={s['dp']} ep={s['ep']}: {row.get('params_bytes', row.get('error'))} "
                f"({time.time() - t:.1f}s)")
            out["settings"].append(row)
        result["models"].append(out)
    result["seconds"] = round(time.time() - t0, 1)
    json.dump(result, sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
