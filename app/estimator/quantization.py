"""Quantization formats: how each stores every tensor, so weight bytes are exact.

Layouts follow `../shared/reference/quantization-and-runtimes.md` section 3 and the libraries it cites
(AutoGPTQ / AutoAWQ packing, bitsandbytes `Int8Params` / `Params4bit`, vLLM fp8); GGUF file types
follow llama.cpp (see `gguf/rules.py`). Non-quantized tensors stay in the compute dtype (2 bytes).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from math import ceil
from typing import Literal

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


def _gptq(bits: int) -> Callable[[Tensor], int]:
    def size(t: Tensor) -> int:
        # qweight int32 [in*bits/32, out]; qzeros int32 [groups, out*bits/32]; scales fp16 [groups, out];
        # g_idx int32 [in] (AutoGPTQ QuantLinear, group size 128)
        m, out, inp = _per_matrix(t)
        groups = ceil(inp / 128)
        qweight = ceil(inp * bits / 32) * out * 4
        qzeros = groups * ceil(out * bits / 32) * 4
        return m * (qweight + qzeros + groups * out * 2 + inp * 4)
    return size


def _awq(t: Tensor) -> int:
    # AutoAWQ GEMM: qweight int32 [in, out/8]; qzeros int32 [groups, out/8]; scales fp16 [groups, out]
    m, out, inp = _per_matrix(t)
    groups = ceil(inp / 128)
    packed = ceil(out / 8) * 4
    return m * (inp * packed + groups * packed + groups * out * 2)


def _bnb_4bit(t: Tensor) -> int:
    # bitsandbytes Params4bit: two 4-bit codes per byte + one fp32 absmax per 64 values (no double quant)
    return ceil(t.numel / 2) + ceil(t.numel / 64) * 4


def _per_row(weight_bits: int, scale_bytes: int) -> Callable[[Tensor], int]:
    """Per-output-channel schemes: packed weights plus one scale per output row."""
    def size(t: Tensor) -> int:
        return ceil(t.numel * weight_bits / 8) + t.rows * scale_bytes
    return size


def _fp8_per_tensor(t: Tensor) -> int:
    m, _, _ = _per_matrix(t)
    return t.numel + 4 * m  # e4m3 + one fp32 scale per matrix (vLLM --quantization fp8)


# --- checkpoint formats vLLM loads (quantization_config of released repos) ---
def _bnb_4bit_double_quant(t: Tensor) -> int:
    # bitsandbytes Params4bit with compress_statistics (bnb_4bit_use_double_quant): 4-bit codes, uint8
    # absmax per 64 values, fp32 absmax of those per 256 (QuantState.state2), fp32 offset; plus the
    # 16-entry NF4 code and 256-entry nested code in fp32 per tensor (bitsandbytes functional.quantize_4bit)
    blocks = ceil(t.numel / 64)
    return ceil(t.numel / 2) + blocks + ceil(blocks / 256) * 4 + 4 + (16 + 256) * 4
# --- end vLLM checkpoint formats ---


# --- formats released checkpoints are stored in ---
def _fp8_block128(t: Tensor) -> int:
    # e4m3 weights + one fp32 weight_scale_inv per 128x128 tile (DeepSeek-V3 config.json
    # quantization_config weight_block_size [128, 128]; vLLM fp8 block quantization)
    m, out, inp = _per_matrix(t)
    return m * (out * inp + ceil(out / 128) * ceil(inp / 128) * 4)


def _mxfp4(t: Tensor) -> int:
    # OCP MX FP4 (e2m1): 32-value blocks of 16 bytes plus one e8m0 scale byte (gpt-oss *_blocks / *_scales)
    return ceil(t.numel / 32) * 17


def _expert_linears(t: Tensor) -> bool:
    """gpt-oss quantization_config: only MoE expert weights are MXFP4 (attention, router, embeddings not)."""
    return t.kind == "linear" and "_exps." in t.name


# Which tensors a format quantizes
def _decoder_linears(t: Tensor) -> bool:
    """GPTQ/AWQ/fp8/plain int: linears inside decoder blocks; embeddings, lm_head, vision stay 16-bit."""
    return t.part == "language" and t.kind == "linear"


def _all_linears(t: Tensor) -> bool:
    """bitsandbytes replaces every nn.Linear except the output layer (llm_int8_skip_modules)."""
    return t.kind == "linear"


@dataclass(frozen=True, slots=True)
class Format:
    slug: str
    label: str
    group: Group
    source: str
    runtimes: tuple[str, ...]  # the first is the default runtime
    element_bytes: int = 0  # float formats: bytes of every tensor
    linear_size: Callable[[Tensor], int] | None = None
    linear_label: str = ""
    quantizes: Callable[[Tensor], bool] = _decoder_linears
    gguf_form: str = ""  # the GGUF file type this checkpoint format is converted to for llama.cpp, if any
    moe_only: bool = False  # a format of MoE expert tensors (MXFP4_MOE): meaningless for a dense model

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
           (_HF,), linear_size=_per_row(8, 4), linear_label="bnb int8", quantizes=_all_linears),
    Format("bnb-nf4", "bitsandbytes NF4", "gpu", f"bitsandbytes Params4bit, blocksize 64; {_REF}", (_HF,),
           linear_size=_bnb_4bit, linear_label="bnb NF4", quantizes=_all_linears),
    Format("bnb-fp4", "bitsandbytes FP4", "gpu", f"bitsandbytes Params4bit, blocksize 64; {_REF}", (_HF,),
           linear_size=_bnb_4bit, linear_label="bnb FP4", quantizes=_all_linears),
    Format("gptq-int4", "GPTQ 4-bit (g128)", "gpu", f"AutoGPTQ QuantLinear packing; {_REF}", (_HF, "vllm"),
           linear_size=_gptq(4), linear_label="GPTQ int4 g128"),
    Format("gptq-int8", "GPTQ 8-bit (g128)", "gpu", f"AutoGPTQ QuantLinear packing; {_REF}", (_HF, "vllm"),
           linear_size=_gptq(8), linear_label="GPTQ int8 g128"),
    Format("awq-int4", "AWQ 4-bit (GEMM, g128)", "gpu", f"AutoAWQ WQLinear_GEMM packing; {_REF}", (_HF, "vllm"),
           linear_size=_awq, linear_label="AWQ int4 g128"),
    # --- checkpoint formats vLLM loads ---
    Format("fp8-dynamic", "FP8 dynamic (e4m3, per-channel scale)", "gpu",
           f"compressed-tensors FP8_DYNAMIC (llm-compressor): e4m3 + fp32 scale per output row; {_REF}",
           ("vllm", _HF), linear_size=_per_row(8, 4), linear_label="FP8 e4m3 per-channel"),
    Format("bnb-nf4-dq", "bitsandbytes NF4, double quant", "gpu",
           f"bitsandbytes Params4bit, blocksize 64, compress_statistics (pre-quantized bnb-4bit checkpoints); {_REF}",
           (_HF, "vllm"), linear_size=_bnb_4bit_double_quant, linear_label="bnb NF4 (double quant)",
           quantizes=_decoder_linears),
    # --- end vLLM checkpoint formats ---
    # --- formats released checkpoints are stored in ---
    Format("fp8-block128", "FP8 (e4m3, 128x128 block scales)", "gpu",
           "DeepSeek-V3 quantization_config (fp8, weight_block_size [128, 128]); vLLM fp8 block scales",
           ("vllm", _HF), linear_size=_fp8_block128, linear_label="FP8 e4m3 block128"),
    Format("mxfp4", "MXFP4 (experts)", "gpu", "OCP Microscaling spec v1.0 MXFP4; gpt-oss quantization_config "
           "(experts only)", ("vllm", _HF), linear_size=_mxfp4, linear_label="MXFP4", quantizes=_expert_linears,
           gguf_form="mxfp4_moe"),  # convert_hf_to_gguf.py keeps the experts MXFP4 (GptOssModel.repack_mxfp4)
    *(_gguf(slug, ft.name) for slug, ft in gguf.FILE_TYPES.items()),
]}


@dataclass(frozen=True, slots=True)
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


@per_spec
def stored_weights(spec: ModelSpec, slug: str) -> StoredWeights:
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
    assert fmt.linear_size is not None
    types, sizes = [], []
    for t in tensors:
        if fmt.quantizes(t):
            types.append(fmt.linear_label)
            sizes.append(fmt.linear_size(t))
        else:
            types.append(spec.dtype_slug.upper())
            sizes.append(t.numel * COMPUTE_BYTES)
    return _stored(tensors, types, sizes)
