"""The command that runs what an estimate describes: llama-server, vllm serve, or transformers.

Flags are the tools' own: llama.cpp common/arg.cpp (-m, -c, -b, -ub, -fa on|off, -ctk, -ctv, -ngl, -np,
-kvu, --mmproj), vLLM vllm/engine/arg_utils.py (`vllm serve` --max-model-len, --gpu-memory-utilization,
--tensor-parallel-size, --pipeline-parallel-size, --kv-cache-dtype, --max-num-seqs,
--max-num-batched-tokens, --block-size, --enforce-eager, --quantization, --dtype), transformers
`from_pretrained` (dtype, device_map, quantization_config with BitsAndBytesConfig / GPTQConfig).
Checked against those sources in tests/test_commands_sources.py.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from app.estimator.schema import ResolvedRequest
from app.estimator.spec import ModelSpec

# our format slug -> vLLM --quantization for formats vLLM quantizes at load (others: the checkpoint's own
# quantization_config, no flag). bitsandbytes also needs --load-format bitsandbytes in older vLLM
# (vllm/engine/arg_utils.py create_engine_config raises without it); later releases accept it too.
_VLLM_QUANT = {"fp8": "fp8", "bnb-nf4-dq": "bitsandbytes", "bnb-nf4": "bitsandbytes", "bnb-fp4": "bitsandbytes",
               "bnb-int8": "bitsandbytes"}
_VLLM_DTYPE = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}  # vllm/config/model.py ModelDType
# bnb_4bit_compute_dtype: the estimate computes in 16 bit; left out, transformers 5.25 BitsAndBytesConfig sets
# torch.float32 (utils/quantization_config.py) and every Linear4bit casts its input to fp32 and dequantizes into it
# (bitsandbytes 0.50.2 nn/modules.py Linear4bit.forward)
_HF_QUANT = {"bnb-nf4": 'BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", '
                        'bnb_4bit_compute_dtype=torch.bfloat16)',
             "bnb-fp4": 'BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="fp4", '
                        'bnb_4bit_compute_dtype=torch.bfloat16)',
             "bnb-int8": "BitsAndBytesConfig(load_in_8bit=True)"}
_TORCH_DTYPE = {"fp32": "torch.float32", "fp16": "torch.float16", "bf16": "torch.bfloat16"}
_KV_LLAMA = {"fp16": "f16", "bf16": "bf16", "fp32": "f32"}  # other KV slugs are llama.cpp's own names


def _flags(pairs: list[tuple[str, Any]]) -> str:
    out = []
    for flag, value in pairs:
        if value is True:
            out.append(flag)
        elif type(value) is int:  # digits need no quoting
            out.append(f"{flag} {value}")
        elif value is not None and value is not False:  # 0 is a value (-ngl 0), False is an absent switch
            out.append(f"{flag} {_quote(str(value))}")
    return " ".join(out)


@lru_cache(maxsize=4096)  # file names, types and switches repeat from one command to the next
def _quote(text: str) -> str:
    return shlex.quote(text)


def _llama_server(req: ResolvedRequest, spec: ModelSpec, extra: Any, repo: str | None = None) -> str:
    lc = getattr(extra, "llamacpp", None)
    kv = _KV_LLAMA.get(req.kv_cache, req.kv_cache)
    gguf = f"{spec.name}-{req.quantization.upper()}.gguf"
    pairs: list[tuple[str, Any]] = [
        ("-m", gguf), ("-c", lc.n_ctx if lc else req.context * req.batch), ("-b", lc.n_batch if lc else None),
        ("-ub", lc.n_ubatch if lc else None), ("-fa", "on" if req.flash_attention else "off"),
        ("-ctk", lc.cache_type_k if lc else kv), ("-ctv", lc.cache_type_v if lc else kv),
        ("-ngl", lc.n_gpu_layers if lc else spec.language_model.layers + 1),
        ("-np", lc.n_parallel if lc else req.batch),
        ("-kvu", bool(lc and lc.kv_unified)),
        ("--mmproj", f"mmproj-{spec.name}-F16.gguf" if spec.vision is not None and req.images else None),
    ]
    return "llama-server " + _flags(pairs)


def _vllm_serve(req: ResolvedRequest, spec: ModelSpec, extra: Any, repo: str | None = None) -> str:
    v = getattr(extra, "vllm", None)
    prequantized = repo is not None and repo != spec.hf_repo  # a checkpoint that names its own quantization
    kv = "fp8" if req.kv_cache == "fp8" else None  # auto otherwise: the model dtype (float32 is no CacheDType)
    quant = None if prequantized else _VLLM_QUANT.get(req.quantization)
    pairs: list[tuple[str, Any]] = [
        ("--max-model-len", v.max_model_len if v else req.context),
        ("--gpu-memory-utilization", v.gpu_memory_utilization if v else None),
        ("--tensor-parallel-size", v.tensor_parallel_size if v else req.gpu_count),
        ("--pipeline-parallel-size", v.pipeline_parallel_size if v and v.pipeline_parallel_size > 1 else None),
        ("--data-parallel-size", v.data_parallel_size if v and v.data_parallel_size > 1 else None),
        ("--enable-expert-parallel", bool(v and v.enable_expert_parallel)),
        ("--kv-cache-dtype", kv), ("--max-num-seqs", v.max_num_seqs if v else None),
        ("--max-num-batched-tokens", v.max_num_batched_tokens if v else None),
        ("--block-size", v.block_size if v else None),
        ("--enforce-eager", bool(v and v.enforce_eager)),
        # vllm/engine/arg_utils.py --speculative-config: a JSON object of SpeculativeConfig fields
        ("--speculative-config", json.dumps({"method": v.speculative_method, "num_speculative_tokens":
                                             v.num_speculative_tokens}) if v and v.speculative_method else None),
        ("--quantization", quant), ("--load-format", "bitsandbytes" if quant == "bitsandbytes" else None),
        ("--dtype", _VLLM_DTYPE.get(req.quantization)),
    ]
    return f"vllm serve {repo or spec.hf_repo} " + _flags(pairs)


def _transformers(req: ResolvedRequest, spec: ModelSpec, extra: Any, repo: str | None = None) -> str:
    args = [repr(repo or spec.hf_repo), f"dtype={_TORCH_DTYPE.get(req.quantization, 'torch.bfloat16')}",
            'device_map="auto"']
    if req.quantization in _HF_QUANT:
        config = _HF_QUANT[req.quantization]
        if req.llm_int8_skip_modules is not None:  # BitsAndBytesConfig's own keyword
            config = f"{config[:-1]}, llm_int8_skip_modules={json.dumps(req.llm_int8_skip_modules)})"
        args.append(f"quantization_config={config}")
    cls = "AutoModelForImageTextToText" if spec.vision is not None else "AutoModelForCausalLM"
    return f"{cls}.from_pretrained({', '.join(args)})"


COMMANDS: dict[str, Callable[[ResolvedRequest, ModelSpec, Any, str | None], str]] = {
    "llama.cpp": _llama_server, "vllm": _vllm_serve, "transformers": _transformers}


def command_for(request: ResolvedRequest, spec: ModelSpec, extra: Any = None, repo: str | None = None) -> str:
    """The invocation that runs `spec` as `request` describes.

    Args:
        request: the resolved request of an estimate.
        spec: the model.
        extra: the estimate (or anything with `llamacpp` / `vllm` blocks) for runtime-resolved flags.
        repo: the checkpoint actually served when it is not spec.hf_repo (a quantized copy), vLLM and
            transformers only.

    Returns:
        One command line (llama-server, vllm serve) or one Python call (transformers).
    """
    return COMMANDS[request.runtime](request, spec, extra, repo)
