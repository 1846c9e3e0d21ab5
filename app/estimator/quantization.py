"""Quantization formats: how each stores every tensor, so weight bytes are exact.

Layouts follow `../shared/reference/quantization-and-runtimes.md` section 3 and the libraries it cites
(AutoGPTQ / AutoAWQ packing, bitsandbytes `Int8Params` / `Params4bit`, vLLM fp8); GGUF file types
follow llama.cpp (see `gguf/rules.py`). Non-quantized tensors stay in the compute dtype (2 bytes).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from fnmatch import fnmatchcase
from math import ceil
from typing import Literal

from app.estimator import module_names
from app.estimator.errors import InvalidRequest
from app.estimator.gguf import rules as gguf
from app.estimator.memo import per_spec
from app.estimator.params import Tensor, model_tensors
from app.estimator.schema import WeightGroup
from app.estimator.spec import ModelSpec

Group = Literal["full", "gpu", "gguf"]
GROUP_LABELS: dict[Group, str] = {"full": "Full precision", "gpu": "GPU quantization", "gguf": "GGUF (llama.cpp)"}
COMPUTE_BYTES = 2  # fp16/bf16 compute dtype for everything a format leaves unquantized


def _per_matrix(t: Tensor) -> tuple[int, int, int]:
    """(matrices, out, in) of a linear weight; MoE expert stacks are [experts, out, in]."""
    return t.numel // (t.shape[-2] * t.shape[-1]), t.shape[-2], t.shape[-1]


def gptq_parts(t: Tensor, bits: int, group_size: int = 128) -> dict[str, int]:
    """Stored tensors of one GPTQ linear (AutoGPTQ QuantLinear): qweight int32 [in*bits/32, out], qzeros int32
    [groups, out*bits/32], scales fp16 [groups, out], g_idx int32 [in]."""
    m, out, inp = _per_matrix(t)
    groups = 1 if group_size == -1 else ceil(inp / group_size)  # -1: one group (vLLM: group_size = input_size)
    return {"qweight int32": m * ceil(inp * bits / 32) * out * 4,
            "qzeros int32": m * groups * ceil(out * bits / 32) * 4, "scales float16": m * groups * out * 2,
            "g_idx int32": m * inp * 4}


def _gptq(bits: int) -> Callable[[Tensor], int]:
    def size(t: Tensor) -> int:
        return sum(gptq_parts(t, bits).values())
    return size


def awq_parts(t: Tensor, group_size: int = 128) -> dict[str, int]:
    """AutoAWQ GEMM: qweight int32 [in, out/8]; qzeros int32 [groups, out/8]; scales fp16 [groups, out]."""
    m, out, inp = _per_matrix(t)
    groups = 1 if group_size == -1 else ceil(inp / group_size)
    packed = ceil(out / 8) * 4
    return {"qweight int32": m * inp * packed, "qzeros int32": m * groups * packed,
            "scales float16": m * groups * out * 2}


def _awq(t: Tensor) -> int:
    return sum(awq_parts(t).values())


# bitsandbytes 0.50.2 functional.quantize_4bit: each weight's QuantState holds its own fp32 copy of the 16-entry
# NF4/FP4 code (get_4bit_type builds a new tensor per call); measured: model_specs/bnb/weights.json
BNB_4BIT_CODE_BYTES = 16 * 4


def _per_module(size: Callable[[Tensor], int]) -> Callable[[Tensor], int]:
    """bitsandbytes quantizes module by module: a fused tensor that is `modules` nn.Linear in the transformers class
    (SigLIP q/k/v) is that many weights of out / modules rows, each with its own quant state."""
    def sized(t: Tensor) -> int:
        if t.modules == 1:
            return size(t)
        one = replace(t, shape=(t.shape[-2] // t.modules, t.shape[-1]), modules=1)
        return t.modules * size(one)
    return sized


@_per_module
def _bnb_4bit(t: Tensor) -> int:
    # bitsandbytes Params4bit (blocksize 64, quant_storage uint8, no double quant): two 4-bit codes per byte, one
    # fp32 absmax per 64 values, the 16-entry fp32 code
    return ceil(t.numel / 2) + ceil(t.numel / 64) * 4 + BNB_4BIT_CODE_BYTES


def _per_row(weight_bits: int, scale_bytes: int) -> Callable[[Tensor], int]:
    """Per-output-channel schemes: packed weights plus one scale per output row."""
    def size(t: Tensor) -> int:
        return ceil(t.numel * weight_bits / 8) + t.rows * scale_bytes
    return size


def _fp8_per_tensor(t: Tensor) -> int:
    m, _, _ = _per_matrix(t)
    return t.numel + 4 * m  # e4m3 + one fp32 scale per matrix (vLLM --quantization fp8)


# --- checkpoint formats vLLM loads (quantization_config of released repos) ---
def _bnb_4bit_dequant(t: Tensor, e: int) -> int:
    """What bitsandbytes 0.50.2 allocates to run one Linear4bit over more than a few rows (backends/cuda/ops.py
    _dequant_linear_fallback: the weight dequantized into an [out, in] tensor of the input's dtype, then F.linear)."""
    _, out, inp = _per_matrix(t)  # one module: an expert stack runs one expert's matrix at a time
    return out // t.modules * inp * e


def _bnb_4bit_dq_dequant(t: Tensor, e: int) -> int:
    # double quant: the fp32 absmax dequantized from uint8 (absmax_dq), and absmax_dq + offset, beside the weight
    _, out, inp = _per_matrix(t)
    return _bnb_4bit_dequant(t, e) + 2 * ceil(out // t.modules * inp / 64) * 4


@_per_module
def _bnb_4bit_double_quant(t: Tensor) -> int:
    # bitsandbytes Params4bit with compress_statistics (bnb_4bit_use_double_quant): 4-bit codes, uint8
    # absmax per 64 values, fp32 absmax of those per 256 (QuantState.state2), fp32 offset; plus the
    # 16-entry NF4 code and 256-entry nested code in fp32 per tensor (bitsandbytes functional.quantize_4bit)
    blocks = ceil(t.numel / 64)
    return ceil(t.numel / 2) + blocks + ceil(blocks / 256) * 4 + 4 + (16 + 256) * 4
# --- end vLLM checkpoint formats ---


# --- formats released checkpoints are stored in ---
def fp8_block128_parts(t: Tensor) -> dict[str, int]:
    """e4m3 weights + one fp32 weight_scale_inv per 128x128 tile, ceil division (DeepSeek-V3 config.json
    quantization_config weight_block_size [128, 128]; vLLM fp8.py Fp8LinearMethod create_weights)."""
    m, out, inp = _per_matrix(t)
    return {"weight float8_e4m3fn": m * out * inp,
            "weight_scale_inv float32": m * ceil(out / 128) * ceil(inp / 128) * 4}


def _fp8_block128(t: Tensor) -> int:
    return sum(fp8_block128_parts(t).values())


def _mxfp4(t: Tensor) -> int:
    # OCP MX FP4 (e2m1): 32-value blocks of 16 bytes plus one e8m0 scale byte (gpt-oss *_blocks / *_scales)
    return ceil(t.numel / 32) * 17


def _expert_linears(t: Tensor) -> bool:
    """gpt-oss quantization_config: only MoE expert weights are MXFP4 (attention, router, embeddings not)."""
    return t.kind == "linear" and "_exps." in t.name


def nvfp4_parts(t: Tensor, input_scale: bool = True) -> dict[str, int]:
    """Stored tensors of one NVFP4 linear: two e2m1 codes per byte, one FP8-E4M3 scale per 16 values of a row,
    one fp32 per-tensor weight_scale_2 and (W4A4) one fp32 input_scale per module (vLLM
    model_executor/layers/quantization/modelopt.py KNvfp4Static / KNvfp4Dynamic create_weights;
    compressed_tensors_w4a4_nvfp4.py: weight_packed, weight_scale, weight_global_scale, input_global_scale)."""
    m, out, inp = _per_matrix(t)
    parts = {"weight uint8": m * out * ceil(inp / 2), "weight_scale float8_e4m3fn": m * out * ceil(inp / 16),
             "weight_scale_2 float32": 4 * m}
    if input_scale:
        parts["input_scale float32"] = 4 * m
    return parts


def fp8_static_parts(t: Tensor) -> dict[str, int]:
    """ModelOpt FP8 (W8A8 static): e4m3 weight, fp32 weight_scale and input_scale per module (vLLM modelopt.py
    KFp8StaticTensor create_weights)."""
    m, _, _ = _per_matrix(t)
    return {"weight float8_e4m3fn": t.numel, "weight_scale float32": 4 * m, "input_scale float32": 4 * m}


@dataclass(frozen=True, slots=True, repr=False)
class Scheme:
    """How one linear weight is stored, for checkpoints that choose it per module (spec.stored_schemes)."""

    slug: str
    label: str
    parts: Callable[[Tensor], dict[str, int]]

    def size(self, t: Tensor) -> int:
        return sum(self.parts(t).values())


SCHEMES: dict[str, Scheme] = {s.slug: s for s in [
    Scheme("nvfp4", "NVFP4 (W4A4)", nvfp4_parts),
    Scheme("nvfp4-w4a16", "NVFP4 (W4A16)", lambda t: nvfp4_parts(t, input_scale=False)),
    Scheme("fp8-static", "FP8 e4m3 per-tensor (static)", fp8_static_parts),
]}


def _nothing(t: Tensor) -> bool:
    """A checkpoint-only format: every quantized tensor is named by the spec's stored_schemes."""
    return False


# Which tensors a format quantizes
def _decoder_linears(t: Tensor) -> bool:
    """GPTQ/AWQ/fp8/plain int: linears inside decoder blocks; embeddings, lm_head, vision stay 16-bit."""
    return t.part == "language" and t.kind == "linear"


# linear weights (ours) that the transformers class holds as a bare nn.Parameter, not an nn.Linear module: no bnb
BNB_PARAMETERS = {
    "mm.input_projection.weight": "transformers 5.25 Gemma3MultiModalProjector.mm_input_projection_weight",
}


def _bnb_linears(t: Tensor) -> bool:
    """What transformers 5.25 loads with BitsAndBytesConfig(load_in_4bit / load_in_8bit): replace_with_bnb_linear
    (integrations/bitsandbytes.py) swaps every module whose type is exactly nn.Linear, vision tower included, less
    get_keys_to_not_convert's (quantizers/base.py: tied weights, get_output_embeddings(), the last parameter's
    module: the output layer, kind "output" here). A patch embedding that is an nn.Linear (SigLIP2, Llama 4) is
    swapped too. MoE experts are 3D parameters of an experts module (Qwen3MoE,
    Mixtral, ... in 5.25), not nn.Linear: they stay in the load dtype, as routers do (model_specs/bnb/weights.json)."""
    return (t.kind == "linear" or t.nn_linear) and "_exps." not in t.name and t.name not in BNB_PARAMETERS


@dataclass(frozen=True, slots=True, repr=False)
class Format:
    slug: str
    label: str
    group: Group
    source: str
    runtimes: tuple[str, ...]  # the first is the default runtime
    element_bytes: int = 0  # float formats: bytes of every tensor
    linear_size: Callable[[Tensor], int] | None = None
    linear_parts: Callable[[Tensor], dict[str, int]] | None = None  # "name dtype" -> bytes, where modelled
    grouped_parts: Callable[[Tensor, int], dict[str, int]] | None = None  # the same at the checkpoint's group_size
    linear_label: str = ""
    quantizes: Callable[[Tensor], bool] = _decoder_linears
    gguf_form: str = ""  # the GGUF file type this checkpoint format is converted to for llama.cpp, if any
    moe_only: bool = False  # a format of MoE expert tensors (MXFP4_MOE): meaningless for a dense model
    checkpoint_only: bool = False  # per-module layout read from a checkpoint's config: no rule for other models
    listed: bool = True  # offered on every model's page (dropdown, table); False: only on models stored in it
    refused: tuple[tuple[str, str], ...] = ()  # (runtime, why it cannot load such a checkpoint)
    # bytes one quantized linear's forward allocates beside its input and output (dequantization), given the
    # compute element size; None: nothing, or not modelled
    dequant_scratch: Callable[[Tensor, int], int] | None = None
    # transformers quantizes it while loading (BitsAndBytesConfig load_in_4bit / load_in_8bit): the request's
    # llm_int8_skip_modules chooses what stays 16-bit
    skip_modules: bool = False

    @property
    def is_gguf(self) -> bool:
        return self.group == "gguf"

    @property
    def experts_only(self) -> bool:
        """A format of MoE expert tensors alone: refused for a dense model (MXFP4_MOE), or one that leaves a
        dense model as it is (MXFP4: transformers 5.25.0 integrations/mxfp4.py replace_with_mxfp4_linear swaps
        only GptOssMLP experts; vLLM 0.34.0 quantization/mxfp4.py gives linears UnquantizedLinearMethod)."""
        return self.moe_only or self.quantizes is _expert_linears


_HF = "transformers"
_FLOAT = ("transformers", "vllm")
# layouts: shared/reference/quantization-and-runtimes.md s3 (an internal note: visitors see the libraries named)
_REF = "derived: bytes counted from the stored tensor layout"


_NOT_GGUF = ("llama.cpp", "these are safetensors checkpoints, not a GGUF: llama.cpp loads GGUF files only. Convert "
             "the original weights with llama.cpp's convert_hf_to_gguf.py and pick a GGUF type (q4_k_m, q8_0, ...); "
             "llama.cpp's own NVFP4 GGUF type is not modelled here")
# transformers (5.25): quant_method "modelopt" is not in quantizers/auto.py AUTO_QUANTIZER_MAPPING (the config is
# skipped with a warning and the packed weights do not load), its "nvfp4" quantizer refuses pre-quantized
# checkpoints (quantizer_nvfp4.py validate_environment), and compressed-tensors checkpoints need the separate
# compressed-tensors package, which this calculator does not model
_MODELOPT_REFUSED = (("transformers", "transformers has no loader for ModelOpt checkpoints (quant_method 'modelopt' "
                                      "is not one of its quantizers); serve them with vLLM"), _NOT_GGUF)
_NVFP4_REFUSED = (("transformers", "transformers cannot load pre-quantized NVFP4 checkpoints (quant_method "
                                   "'modelopt' is not one of its quantizers, its nvfp4 quantizer refuses "
                                   "pre-quantized weights, and compressed-tensors needs a package this calculator "
                                   "does not model); serve them with vLLM"), _NOT_GGUF)


def _gguf(slug: str, label: str) -> Format:
    ft = gguf.FILE_TYPES[slug]
    source = ("llama.cpp convert_hf_to_gguf.py (GptOssModel: MXFP4 experts) + gguf GGML_QUANT_SIZES" if ft.converted
              else "llama.cpp src/llama-quant.cpp (llama_tensor_get_type) + gguf GGML_QUANT_SIZES")
    return Format(slug, f"GGUF {label}", "gguf", source, ("llama.cpp",), moe_only=ft.converted)


FORMATS: dict[str, Format] = {f.slug: f for f in [
    Format("fp32", "FP32", "full", "IEEE float32, 4 bytes per parameter", _FLOAT, element_bytes=4),
    Format("fp16", "FP16", "full", "IEEE float16, 2 bytes per parameter", _FLOAT, element_bytes=2),
    Format("bf16", "BF16", "full", "bfloat16, 2 bytes per parameter", _FLOAT, element_bytes=2),
    Format("fp8", "FP8 (e4m3, per-tensor scale)", "gpu", f"vLLM --quantization fp8; {_REF}", ("vllm", _HF),
           linear_size=_fp8_per_tensor, linear_label="FP8 e4m3"),
    Format("int8", "INT8 per-channel", "gpu", "symmetric int8 weights + fp16 scale per output row",
           (_HF, "vllm"), linear_size=_per_row(8, 2), linear_label="INT8 per-channel"),
    Format("int4", "INT4 per-channel", "gpu", "symmetric int4 (2 per byte) + fp16 scale per output row",
           (_HF, "vllm"), linear_size=_per_row(4, 2), linear_label="INT4 per-channel"),
    Format("bnb-int8", "bitsandbytes LLM.int8()", "gpu", f"bitsandbytes Int8Params (SCB fp32 per row); {_REF}",
           (_HF,), linear_size=_per_module(_per_row(8, 4)), linear_label="bnb int8", quantizes=_bnb_linears,
           skip_modules=True),
    Format("bnb-nf4", "bitsandbytes NF4", "gpu", f"bitsandbytes Params4bit, blocksize 64; {_REF}", (_HF,),
           linear_size=_bnb_4bit, linear_label="bnb NF4", quantizes=_bnb_linears, dequant_scratch=_bnb_4bit_dequant,
           skip_modules=True),
    Format("bnb-fp4", "bitsandbytes FP4", "gpu", f"bitsandbytes Params4bit, blocksize 64; {_REF}", (_HF,),
           linear_size=_bnb_4bit, linear_label="bnb FP4", quantizes=_bnb_linears, dequant_scratch=_bnb_4bit_dequant,
           skip_modules=True),
    Format("gptq-int4", "GPTQ 4-bit (g128)", "gpu", f"AutoGPTQ QuantLinear packing; {_REF}", (_HF, "vllm"),
           linear_size=_gptq(4), linear_label="GPTQ int4 g128", linear_parts=lambda t: gptq_parts(t, 4),
           grouped_parts=lambda t, g: gptq_parts(t, 4, g)),
    Format("gptq-int8", "GPTQ 8-bit (g128)", "gpu", f"AutoGPTQ QuantLinear packing; {_REF}", (_HF, "vllm"),
           linear_size=_gptq(8), linear_label="GPTQ int8 g128", linear_parts=lambda t: gptq_parts(t, 8),
           grouped_parts=lambda t, g: gptq_parts(t, 8, g)),
    Format("awq-int4", "AWQ 4-bit (GEMM, g128)", "gpu", f"AutoAWQ WQLinear_GEMM packing; {_REF}", (_HF, "vllm"),
           linear_size=_awq, linear_label="AWQ int4 g128", linear_parts=awq_parts,
           grouped_parts=awq_parts),
    # --- checkpoint formats vLLM loads ---
    Format("fp8-dynamic", "FP8 dynamic (e4m3, per-channel scale)", "gpu",
           f"compressed-tensors FP8_DYNAMIC (llm-compressor): e4m3 + fp32 scale per output row; {_REF}",
           ("vllm", _HF), linear_size=_per_row(8, 4), linear_label="FP8 e4m3 per-channel"),
    Format("bnb-nf4-dq", "bitsandbytes NF4, double quant", "gpu",
           f"bitsandbytes Params4bit, blocksize 64, compress_statistics (pre-quantized bnb-4bit checkpoints); {_REF}",
           (_HF, "vllm"), linear_size=_bnb_4bit_double_quant, linear_label="bnb NF4 (double quant)",
           quantizes=_decoder_linears, dequant_scratch=_bnb_4bit_dq_dequant),
    # --- end vLLM checkpoint formats ---
    # --- formats released checkpoints are stored in ---
    Format("fp8-block128", "FP8 (e4m3, 128x128 block scales)", "gpu",
           "DeepSeek-V3 quantization_config (fp8, weight_block_size [128, 128]); vLLM fp8 block scales",
           ("vllm", _HF), linear_size=_fp8_block128, linear_label="FP8 e4m3 block128",
           linear_parts=fp8_block128_parts),
    Format("mxfp4", "MXFP4 (experts)", "gpu", "OCP Microscaling spec v1.0 MXFP4; gpt-oss quantization_config "
           "(experts only)", ("vllm", _HF), linear_size=_mxfp4, linear_label="MXFP4", quantizes=_expert_linears,
           gguf_form="mxfp4_moe"),  # convert_hf_to_gguf.py keeps the experts MXFP4 (GptOssModel.repack_mxfp4)
    Format("nvfp4", "NVFP4 (W4A4)", "gpu", "NVIDIA NVFP4 (e2m1, FP8-E4M3 scale per 16 values, fp32 per-tensor "
           "scales); ModelOpt quant_algo NVFP4 and compressed-tensors nvfp4-pack-quantized, as vLLM registers them",
           ("vllm",), linear_size=SCHEMES["nvfp4"].size, linear_label=SCHEMES["nvfp4"].label,
           linear_parts=SCHEMES["nvfp4"].parts, refused=_NVFP4_REFUSED, listed=False),
    Format("nvfp4-w4a16", "NVFP4 (W4A16)", "gpu", "NVFP4 weights without an input scale; ModelOpt "
           "W4A16_NVFP4 and compressed-tensors NVFP4A16, as vLLM registers them", ("vllm",),
           linear_size=SCHEMES["nvfp4-w4a16"].size, linear_label=SCHEMES["nvfp4-w4a16"].label,
           linear_parts=SCHEMES["nvfp4-w4a16"].parts,
           refused=_NVFP4_REFUSED, listed=False),
    Format("fp8-static", "FP8 static (ModelOpt)", "gpu",
           "ModelOpt quant_algo FP8, as vLLM registers it (modelopt.py KFp8StaticTensor)", ("vllm",),
           linear_size=SCHEMES["fp8-static"].size, linear_label=SCHEMES["fp8-static"].label,
           linear_parts=SCHEMES["fp8-static"].parts,
           refused=_MODELOPT_REFUSED, listed=False),
    Format("modelopt-mixed", "ModelOpt mixed (NVFP4 / FP8)", "gpu",
           "ModelOpt quant_algo MIXED_PRECISION: each module's quant_algo from the config's quantized_layers "
           "(vLLM modelopt.py ModelOptMixedPrecisionConfig)", ("vllm",), linear_size=SCHEMES["nvfp4"].size,
           linear_label="mixed", quantizes=_nothing, checkpoint_only=True, refused=_NVFP4_REFUSED, listed=False),
    *(_gguf(slug, ft.name) for slug, ft in gguf.FILE_TYPES.items()),
]}


@dataclass(frozen=True, slots=True, repr=False)
class StoredWeights:
    groups: tuple[WeightGroup, ...]  # rows of the weights table
    language_bytes: int
    vision_bytes: int
    file_elements: int  # every tensor the stored form holds (GGUF adds rope_freqs)
    token_embd_bytes: int

    @property
    def total_bytes(self) -> int:
        return self.language_bytes + self.vision_bytes

    @property
    def bits_per_weight(self) -> float:
        """Stored bits over stored elements (llama.cpp's bpw: file tensor bits / file elements)."""
        return 8 * self.total_bytes / self.file_elements


def _group_name(t: Tensor) -> str:
    return t.name.replace(f".{t.layer}.", ".N.", 1) if t.layer is not None else t.name


def _stored(tensors: tuple[Tensor, ...], types: list[str], sizes: list[int]) -> StoredWeights:
    groups: dict[tuple[str, str, str], list[int]] = {}
    parts = {"language": 0, "vision": 0}
    embd = 0
    for t, ty, size in zip(tensors, types, sizes, strict=True):
        row = groups.setdefault((_group_name(t), t.part, ty), [0, 0, 0])
        row[0] += 1
        row[1] += t.numel
        row[2] += size
        parts[t.part] += size
        if t.name == "token_embd.weight":
            embd = size
    return StoredWeights(
        groups=tuple(WeightGroup(name=n, part=p, type=ty, count=c, parameters=e, bytes=b)
                     for (n, p, ty), (c, e, b) in groups.items()),
        language_bytes=parts["language"], vision_bytes=parts["vision"],
        file_elements=sum(t.numel for t in tensors), token_embd_bytes=embd,
    )


def _named_scheme(named: dict[str, str], name: str) -> str | None:
    """The scheme spec.stored_schemes gives tensor `name` (exact name first, then globs), or None."""
    if name in named:
        return named[name]
    return next((v for k, v in named.items() if "*" in k and fnmatchcase(name, k)), None)


def tensor_stored(spec: ModelSpec, fmt: Format, t: Tensor) -> tuple[str, int]:
    """(type label, bytes) of tensor `t` as non-GGUF format `fmt` stores it: the spec's stored_schemes where the
    checkpoint names the tensor's scheme (only for the format it is stored in), else the format's rule."""
    if fmt.element_bytes:
        return fmt.slug.upper(), t.numel * fmt.element_bytes
    named = spec.language_model.stored_schemes if fmt.slug == spec.default_format else None
    scheme = _named_scheme(named, t.name) if named else None
    if scheme == "unquantized" or (scheme is None and not fmt.quantizes(t)):
        return spec.dtype_slug.upper(), t.numel * COMPUTE_BYTES
    if scheme is not None:
        return SCHEMES[scheme].label, SCHEMES[scheme].size(t)
    group = _stored_group(spec, fmt)
    if group is not None:
        assert fmt.grouped_parts is not None
        label = fmt.linear_label.replace("g128", "per-channel" if group == -1 else f"g{group}")
        return label, sum(fmt.grouped_parts(t, group).values())
    assert fmt.linear_size is not None
    return fmt.linear_label, fmt.linear_size(t)


def _stored_group(spec: ModelSpec, fmt: Format) -> int | None:
    """The checkpoint's own group size, for the format it is stored in (None: the format's 128)."""
    group = spec.language_model.stored_group_size
    return group if group is not None and fmt.grouped_parts is not None and fmt.slug == spec.default_format else None


def skip_split(spec: ModelSpec, fmt: Format, skip: tuple[str, ...]) -> Callable[[Tensor], tuple[int, int]]:
    """For BitsAndBytesConfig(llm_int8_skip_modules=skip): (modules bitsandbytes quantizes, modules left 16-bit) of
    a tensor. Given a list, transformers 5.25 adds none of its defaults (get_modules_to_not_convert: no tied
    weights, output embeddings or last module), so the output layer is converted unless a pattern names it; every
    nn.Linear whose full name no pattern matches is (module_names.skip_matcher).

    Raises:
        InvalidRequest: the model's module names are not tabled (app/estimator/module_names.py).
    """
    n = module_names.naming(spec)
    if n is None:
        raise InvalidRequest("llm_int8_skip_modules", f"the transformers module names of {spec.name} are not "
                             f"modelled, so skip patterns cannot be matched; modelled: {module_names.modelled()}")
    skipped = module_names.skip_matcher(skip)

    def split(t: Tensor) -> tuple[int, int]:
        if not (fmt.quantizes(t) or t.kind == "output"):
            return 0, 0
        names = module_names.module_names(n, t)
        if names is None:
            raise InvalidRequest("llm_int8_skip_modules", f"the transformers module of {spec.name}'s tensor "
                                 f"{t.name} is not modelled, so skip patterns cannot be matched")
        kept = sum(map(skipped, names))
        return len(names) - kept, kept
    return split


def applied_skip(fmt: Format, skip: list[str] | None) -> tuple[str, ...] | None:
    """A request's llm_int8_skip_modules where it applies (a format transformers quantizes while loading)."""
    return tuple(skip) if skip is not None and fmt.skip_modules else None


def skip_summary(spec: ModelSpec, fmt: Format, skip: tuple[str, ...]) -> str:
    split = skip_split(spec, fmt, skip)
    quantized = kept = 0
    for t in model_tensors(spec):
        if not t.gguf_only:
            q, k = split(t)  # a candidate is one matrix (experts, 3D, never are)
            quantized, kept = quantized + q, kept + k
    return (f"BitsAndBytesConfig(llm_int8_skip_modules={list(skip)}): {kept:,} linear modules left 16-bit, "
            f"{quantized:,} quantized (transformers 5.25 should_convert_module: prefix, regex or suffix of the full "
            "module name; given a list, none of its defaults is added, so lm_head is quantized unless named)")


def _skip_stored(spec: ModelSpec, fmt: Format, skip: tuple[str, ...]) -> StoredWeights:
    split = skip_split(spec, fmt, skip)
    tensors, types, sizes = [], [], []
    for t in model_tensors(spec):
        if t.gguf_only:
            continue
        quantized, kept = split(t)
        parts = [t] if not (quantized and kept) else [  # a fused tensor some of whose modules are skipped
            replace(t, shape=(t.shape[-2] // t.modules * k, t.shape[-1]), modules=k) for k in (quantized, kept)]
        for part, q in zip(parts, (quantized, 0) if len(parts) == 2 else (quantized,), strict=True):
            tensors.append(part)
            if q:
                types.append(fmt.linear_label)
                sizes.append(fmt.linear_size(part))  # type: ignore[misc]
            else:
                types.append(spec.dtype_slug.upper())
                sizes.append(part.numel * COMPUTE_BYTES)
    return _stored(tuple(tensors), types, sizes)


def stored_weights(spec: ModelSpec, slug: str, skip: tuple[str, ...] | None = None) -> StoredWeights:
    """Every tensor of `spec` as format `slug` stores it; `skip`: llm_int8_skip_modules for a format transformers
    quantizes while loading (ignored by the others; not cached: it is the request's own list)."""
    if skip is not None and FORMATS[slug].skip_modules:
        return _skip_stored(spec, FORMATS[slug], skip)
    return _stored_weights(spec, slug)


@per_spec
def _stored_weights(spec: ModelSpec, slug: str) -> StoredWeights:
    """Every tensor of `spec` as format `slug` stores it (cached per spec and format)."""
    fmt = FORMATS[slug]
    tensors = model_tensors(spec)
    if fmt.is_gguf:
        lm = [t for t in tensors if t.part == "language"]
        vision = [t for t in tensors if t.part == "vision"]
        ggml = gguf.language_types(spec.language_model, lm, gguf.FILE_TYPES[slug]) + [
            gguf.mmproj_type(t) for t in vision]
        types = [g.name for g in ggml]
        sizes = [gguf.tensor_bytes(g, t) for g, t in zip(ggml, lm + vision, strict=True)]
        return _stored(tuple(lm + vision), types, sizes)
    tensors = tuple(t for t in tensors if not t.gguf_only)
    if fmt.element_bytes:
        return _stored(tensors, [fmt.slug.upper()] * len(tensors), [t.numel * fmt.element_bytes for t in tensors])
    types, sizes = [], []
    for t in tensors:
        ty, size = tensor_stored(spec, fmt, t)
        types.append(ty)
        sizes.append(size)
    return _stored(tensors, types, sizes)


def stored_components(spec: ModelSpec, slug: str) -> dict[str, int]:
    """The stored bytes of `spec` in non-GGUF format `slug`, summed per stored tensor kind ("weight uint8",
    "weight_scale float8_e4m3fn", "qweight int32", ...; every tensor left in the compute dtype is "16-bit"), to
    hold against the parameters a runtime registers (model_specs/vllm/quant-weights*.json)."""
    fmt = FORMATS[slug]
    if fmt.is_gguf or fmt.element_bytes:
        raise ValueError(f"{slug}: only quantized checkpoint formats have components")
    named = spec.language_model.stored_schemes if slug == spec.default_format else None
    out: dict[str, int] = {}
    for t in model_tensors(spec):
        if t.gguf_only:
            continue
        scheme = _named_scheme(named, t.name) if named else None
        if scheme == "unquantized" or (scheme is None and not fmt.quantizes(t)):
            parts = {"16-bit": t.numel * COMPUTE_BYTES}
        elif scheme is not None:
            parts = SCHEMES[scheme].parts(t)
        elif _stored_group(spec, fmt) is not None:
            parts = fmt.grouped_parts(t, _stored_group(spec, fmt))  # type: ignore[misc]
        elif fmt.linear_parts is not None:
            parts = fmt.linear_parts(t)
        else:
            raise ValueError(f"{slug}: its stored tensors are not modelled one by one")
        for k, v in parts.items():
            out[k] = out.get(k, 0) + v
    return out


# bitsandbytes 0.50.2 backends/cuda/ops.py gemm_4bit: at most this many rows (tokens) run its fused kernel without
# dequantizing (_GEMM_4BIT_CUSTOM_FLOOR_M); past 1536 (_gemm_4bit_custom_max_m) it always dequantizes; in between
# its per-GPU heuristic chooses (counted here as dequantizing: an upper bound)
BNB_FUSED_MAX_ROWS = 4


def dequant_scratch(spec: ModelSpec, slug: str, rows: int, e: int, skip: tuple[str, ...] | None = None,
                    output_rows: int = 1) -> int:
    """The largest dequantization buffer one of the language model's quantized linears allocates in a forward over
    `rows` tokens (0 where the format dequantizes nothing or the fused kernel runs); `skip` as stored_weights, where
    a quantized output layer runs over `output_rows` (generate()'s logits_to_keep=1: one per sequence)."""
    fmt = FORMATS[slug]
    if fmt.dequant_scratch is None or rows <= BNB_FUSED_MAX_ROWS:
        return 0
    if skip is not None and fmt.skip_modules:
        split = skip_split(spec, fmt, skip)
        return max((fmt.dequant_scratch(t, e) for t in model_tensors(spec)
                    if t.part == "language" and not t.gguf_only and split(t)[0]
                    and (t.kind != "output" or output_rows > BNB_FUSED_MAX_ROWS)), default=0)
    return max((fmt.dequant_scratch(t, e) for t in model_tensors(spec)
                if t.part == "language" and not t.gguf_only and fmt.quantizes(t)), default=0)


# bitsandbytes 0.50.2 on CUDA, Linear8bitLt.forward -> autograd/_functions.py MatMul8bitLt.forward (inference: no
# grad), for an input of `m` rows x `in` in bfloat16 (the card's dtype=torch.bfloat16) and a weight of out x in:
#   int8_vectorwise_quant(A.to(float16), threshold) (backends/cuda/ops.py): the fp16 copy (2 m in), row_stats
#     (4 m), the int8 out_row (m in), then `A.abs() >= threshold`: the fp16 abs (2 m in) and the bool mask (m in)
#   int8_mixed_scaled_mm (backends/default/ops.py, which CUDA runs): for k outlier columns subA = A[:, cols]
#     (2 m k) and subB = int8_vectorwise_dequant(CB[:, cols]).to(bf16): the int8 gather (out k) and two fp32
#     products (4 out k each) alive at once, then 2 out k; int8_scaled_mm: int8_linear_matmul's int32 result
#     (4 m out) and int8_mm_dequant's fp16 output (2 m out) alive while .to(bfloat16) makes the layer's output;
#     with outliers, output.addmm(subA, subB) makes a new output beside the old (2 m out), smaller than the above
# CA (m in), SCA (4 m) and the int64 outlier_cols (8 k) stay alive from the quantization to the end.
LLM_INT8_THRESHOLD = 6.0  # transformers 5.25 BitsAndBytesConfig llm_int8_threshold default


def int8_matmul_scratch(m: int, out: int, inp: int, k: int) -> int:
    """Bytes one LLM.int8() matmul allocates beside its bf16 input and output, at its peak, for k outlier columns
    (inputs with a value >= llm_int8_threshold; 0 <= k <= inp): the larger of the quantization and matmul phases."""
    quant = 6 * m * inp + 4 * m
    kept = m * inp + 4 * m + 8 * k + 2 * m * k  # CA, SCA, outlier_cols, subA
    return max(quant, kept + max(9 * out * k, 2 * out * k + 6 * m * out))


def int8_scratch(spec: ModelSpec, slug: str, rows: int, skip: tuple[str, ...] | None = None) -> tuple[int, int]:
    """(no outlier column, every input column an outlier): the largest LLM.int8() matmul scratch of the language
    model's bnb-int8 linears over `rows` tokens; (0, 0) for other formats. Read from bitsandbytes' code, not
    measured on a GPU; the outlier columns depend on the activations. A quantized output layer (a skip list not
    naming lm_head) runs over one position per sequence (logits_to_keep=1) and is left out."""
    fmt = FORMATS[slug]
    if slug != "bnb-int8":
        return 0, 0
    split = skip_split(spec, fmt, skip) if skip is not None else None
    shapes = {(t.shape[-2] // t.modules, t.shape[-1]) for t in model_tensors(spec)
              if t.part == "language" and not t.gguf_only and t.kind != "output"
              and (split(t)[0] if split else fmt.quantizes(t))}
    return (max((int8_matmul_scratch(rows, o, i, 0) for o, i in shapes), default=0),
            max((int8_matmul_scratch(rows, o, i, i) for o, i in shapes), default=0))
