"""The printed reproduce-commands use only flags and values the real tools accept.

Expected tables are transcribed from the tools' own source (outside values), each named next to it.
"""

from __future__ import annotations

import inspect
import shlex

import pytest

from app.estimator import FORMATS, KV_TYPES, RUNTIMES, VramRequest, estimate
from app.estimator.errors import EstimatorError
from app.estimator.runtimes.vllm_flags import VLLM_METHODS

# ggml-org/llama.cpp common/arg.cpp at 0c1e57098bba43ac29e6e3b677cdceebdd22334f (the build vendored in
# llama-cpp-python 0.3.36): option names of -m, -c, -b, -ub, -fa, -ctk, -ctv, -ngl, -np, -kvu, -mm/--mmproj.
LLAMA_FLAGS = {"-m", "--model", "-c", "--ctx-size", "-b", "--batch-size", "-ub", "--ubatch-size", "-fa",
               "--flash-attn", "-ctk", "--cache-type-k", "-ctv", "--cache-type-v", "-ngl", "--gpu-layers",
               "--n-gpu-layers", "-np", "--parallel", "-kvu", "--kv-unified", "-mm", "--mmproj"}
LLAMA_SWITCHES = {"-kvu", "--kv-unified"}
# same file: kv_cache_types (ggml_type_name of F32, F16, BF16, Q8_0, Q4_0, Q4_1, IQ4_NL, Q5_0, Q5_1)
LLAMA_KV_TYPES = {"f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "iq4_nl", "q5_0", "q5_1"}
# same file: -fa "[on|off|auto]" (is_truthy / is_falsey / is_autoy)
LLAMA_FA_VALUES = {"on", "off", "auto"}

# vllm-project/vllm vllm/engine/arg_utils.py (stored version 001999d2f360c2c5da23a916510c273b1a73d06c):
# EngineArgs fields behind these `vllm serve` options.
VLLM_FLAGS = {"--max-model-len", "--gpu-memory-utilization", "--tensor-parallel-size",
              "--pipeline-parallel-size", "--kv-cache-dtype", "--max-num-seqs", "--max-num-batched-tokens",
              "--block-size", "--enforce-eager", "--quantization", "--load-format", "--dtype"}
VLLM_SWITCHES = {"--enforce-eager"}
# vllm-project/vllm vllm/config/cache.py CacheDType (stored version 002f10e0cfa1373a19a0d2756598a34b700d20e5)
VLLM_CACHE_DTYPES = {"auto", "float16", "bfloat16", "fp8", "fp8_e4m3", "fp8_e5m2", "fp8_inc", "fp8_ds_mla",
                     "nvfp4_ds_mla", "turboquant_k8v4", "turboquant_4bit_nc", "turboquant_k3v4_nc",
                     "turboquant_3bit_nc", "int4_per_token_head", "int8_per_token_head", "fp8_per_token_head",
                     "nvfp4", "nvfp4_4over6"}
# vllm-project/vllm vllm/model_executor/layers/quantization/__init__.py QuantizationMethods
# (stored version 0034007debee2a009e030804f2cde7953aff78c6)
VLLM_QUANT_METHODS = {"aqlm", "awq", "deepspeedfp", "tpu_int8", "fp8", "ptpc_fp8", "fbgemm_fp8", "deepgemm_fp8",
                      "modelopt", "modelopt_fp4", "marlin", "bitblas", "gguf", "gptq_marlin_24", "gptq_marlin",
                      "gptq_bitblas", "awq_marlin", "gptq", "compressed-tensors", "bitsandbytes", "qqq", "hqq",
                      "experts_int8", "neuron_quant", "ipex", "quark", "moe_wna16", "torchao", "auto-round"}
# vllm-project/vllm vllm/config/model.py ModelDType: auto, half, float16, bfloat16, float, float32
VLLM_DTYPES = {"auto", "half", "float16", "bfloat16", "float", "float32"}
# arg_utils.py create_engine_config: --quantization bitsandbytes requires --load-format bitsandbytes
VLLM_LOAD_FORMATS_NEEDED = {"bitsandbytes": "bitsandbytes"}

MODEL = "llama-3.1-8b"


def _command(runtime: str, **kw: object) -> str | None:
    try:
        return estimate_for(runtime, **kw).command
    except EstimatorError:
        return None  # a request the runtime refuses prints no command


def estimate_for(runtime: str, **kw: object):
    from app.catalog import load_catalog
    return estimate(load_catalog().model(MODEL), VramRequest(model=MODEL, runtime=runtime, context=4096, **kw))


def _options(cmd: str, prefix: int, switches: set[str]) -> dict[str, str | None]:
    words, out, i = shlex.split(cmd)[prefix:], {}, 0
    while i < len(words):
        flag = words[i]
        assert flag.startswith("-"), f"stray word {flag!r} in {cmd}"
        if flag in switches:
            out[flag], i = None, i + 1
        else:
            out[flag], i = words[i + 1], i + 2
    return out


def _llama(**kw: object) -> dict[str, str | None]:
    cmd = _command("llama.cpp", **kw)
    assert cmd is not None and cmd.startswith("llama-server ")
    return _options(cmd, 1, LLAMA_SWITCHES)


def _vllm(**kw: object) -> dict[str, str | None] | None:
    cmd = _command("vllm", **kw)
    if cmd is None:
        return None
    assert cmd.startswith("vllm serve ")
    return _options(cmd, 3, VLLM_SWITCHES)


@pytest.mark.parametrize("fa", [True, False])
def test_llama_server_flags_exist(fa: bool) -> None:
    opts = _llama(quantization="q4_k_m", flash_attention=fa)
    assert set(opts) <= LLAMA_FLAGS
    assert opts["-fa"] in LLAMA_FA_VALUES and opts["-fa"] == ("on" if fa else "off")
    assert int(opts["-ngl"]) >= 0 and int(opts["-c"]) > 0 and int(opts["-np"]) >= 1


@pytest.mark.parametrize("kv", [k for k in KV_TYPES if k in RUNTIMES["llama.cpp"].kv_types])
def test_llama_cache_types_accepted(kv: str) -> None:
    opts = _llama(quantization="q4_k_m", kv_cache=kv, flash_attention=True)
    assert opts["-ctk"] in LLAMA_KV_TYPES and opts["-ctv"] in LLAMA_KV_TYPES


@pytest.mark.parametrize("kv", [k for k in KV_TYPES if k in RUNTIMES["vllm"].kv_types])
def test_vllm_kv_cache_dtype_accepted(kv: str) -> None:
    opts = _vllm(kv_cache=kv)
    if opts is None:
        pytest.skip(f"vLLM estimate refuses kv_cache={kv} for {MODEL}")
    assert set(opts) <= VLLM_FLAGS
    assert opts.get("--kv-cache-dtype", "auto") in VLLM_CACHE_DTYPES


# the formats our vLLM model loads (a checkpoint-only layout, ModelOpt mixed precision, on its own checkpoint)
@pytest.mark.parametrize("fmt", [f for f in FORMATS if f in VLLM_METHODS])
def test_vllm_quantization_and_dtype_accepted(fmt: str) -> None:
    if FORMATS[fmt].checkpoint_only:
        from app.catalog import load_catalog
        model = next(m for m in load_catalog().models.values() if m.default_format == fmt)
        cmd = estimate(model, VramRequest(model=model.slug, runtime="vllm", context=4096)).command
        assert cmd.startswith("vllm serve ")
        opts = _options(cmd, 3, VLLM_SWITCHES)
    else:
        opts = _vllm(quantization=fmt)
    assert opts is not None, f"vLLM estimate refused quantization={fmt}"
    assert set(opts) <= VLLM_FLAGS
    assert opts.get("--quantization", "auto-round") in VLLM_QUANT_METHODS
    assert opts.get("--dtype", "auto") in VLLM_DTYPES
    q = opts.get("--quantization")
    if q in VLLM_LOAD_FORMATS_NEEDED:
        assert opts.get("--load-format") == VLLM_LOAD_FORMATS_NEEDED[q]


def test_vllm_fp8_kv_and_weights() -> None:
    opts = _vllm(quantization="fp8", kv_cache="fp8")
    assert opts is not None and opts["--kv-cache-dtype"] == "fp8" and opts["--quantization"] == "fp8"


def test_transformers_uses_dtype_not_deprecated_torch_dtype() -> None:
    # transformers (installed version) modeling_utils.PreTrainedModel.from_pretrained pops `dtype` and keeps
    # `torch_dtype` only for backward compatibility ("`torch_dtype` is deprecated! Use `dtype` instead!").
    transformers = pytest.importorskip("transformers", reason="needs the measure extra (transformers)")
    src = inspect.getsource(transformers.PreTrainedModel.from_pretrained)
    assert 'kwargs.pop("dtype"' in src and "kept for BC" in src
    cmd = _command("transformers", quantization="bnb-nf4")
    assert cmd is not None and "dtype=torch.bfloat16" in cmd and "torch_dtype" not in cmd
    assert 'bnb_4bit_quant_type="nf4"' in cmd and 'device_map="auto"' in cmd
