"""GGUF file types as llama.cpp writes them: which GGML type each tensor gets, and its bytes.

Block sizes come from the `gguf` package (`GGML_QUANT_SIZES`, the table llama.cpp's gguf-py ships).
The per-tensor choice transcribes `llama_tensor_get_type_impl` and `tensor_type_fallback` from
llama.cpp `src/llama-quant.cpp` (as vendored in llama-cpp-python 0.3.36). Omitted: the Falcon- and
70B-specific branches and the IQ3_XS/IQ3_S/Q2_K_S file types, which the catalog does not offer.
MXFP4_MOE is the form gpt-oss GGUFs ship in (ggml-org's and Ollama's): not a llama-quantize output but
convert_hf_to_gguf.py's GptOssModel, which repacks the checkpoint's MXFP4 experts as GGML_TYPE_MXFP4
(`repack_mxfp4`) and writes every other tensor by its generic rules (`prepare_tensors`).
Note that this llama.cpp treats a fused attn_qkv like attn_v (`category_is_attn_v`), so its own
ATTENTION_QKV branch is unreachable; we follow the code, not the older README wording.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.estimator.gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType
from app.estimator.params import Tensor
from app.estimator.spec import LanguageModel

T = GGMLQuantizationType


def tensor_bytes(ggml_type: T, t: Tensor) -> int:
    """rows x (row length / block elements) x block bytes (ggml_row_size)."""
    block, size = GGML_QUANT_SIZES[ggml_type]
    return t.rows * (t.row // block) * size


@dataclass(frozen=True, slots=True, repr=False)
class FileType:
    """A llama.cpp file type (LLAMA_FTYPE_MOSTLY_*): a default tensor type plus per-tensor upgrades."""

    name: str
    default: T
    imatrix: bool  # whether files of this type are made with an importance matrix (required for IQ1-IQ3)
    converted: bool = False  # written by convert_hf_to_gguf.py as the checkpoint stores it (MXFP4_MOE)


FILE_TYPES: dict[str, FileType] = {
    "f16": FileType("F16", T.F16, False),
    "q8_0": FileType("Q8_0", T.Q8_0, False),
    "q6_k": FileType("Q6_K", T.Q6_K, False),
    "q5_k_m": FileType("Q5_K_M", T.Q5_K, False),
    "q5_k_s": FileType("Q5_K_S", T.Q5_K, False),
    "q5_0": FileType("Q5_0", T.Q5_0, False),
    "q4_k_m": FileType("Q4_K_M", T.Q4_K, False),
    "q4_k_s": FileType("Q4_K_S", T.Q4_K, False),
    "q4_0": FileType("Q4_0", T.Q4_0, False),
    "q3_k_l": FileType("Q3_K_L", T.Q3_K, False),
    "q3_k_m": FileType("Q3_K_M", T.Q3_K, False),
    "q3_k_s": FileType("Q3_K_S", T.Q3_K, False),
    "q2_k": FileType("Q2_K", T.Q2_K, False),
    "iq4_xs": FileType("IQ4_XS", T.IQ4_XS, False),
    "iq4_nl": FileType("IQ4_NL", T.IQ4_NL, False),
    "iq3_m": FileType("IQ3_M", T.IQ3_S, False),
    "iq3_xxs": FileType("IQ3_XXS", T.IQ3_XXS, True),
    "iq2_m": FileType("IQ2_M", T.IQ2_S, True),
    "iq2_xxs": FileType("IQ2_XXS", T.IQ2_XXS, True),
    "iq1_m": FileType("IQ1_M", T.IQ1_M, True),
    # LLAMA_FTYPE_MOSTLY_MXFP4_MOE = 38 (include/llama.h); default F16: --outtype f16 (bf16 has the same size)
    "mxfp4_moe": FileType("MXFP4_MOE", T.F16, False, converted=True),
}

_LOW_BIT = {"IQ2_XXS", "IQ2_XS", "IQ1_S", "IQ2_S", "IQ2_M", "IQ1_M"}
_OUTPUT_Q5K = _LOW_BIT | {"IQ3_XXS"}

# tensor_type_fallback: a row length the block does not divide falls back to a 32-block type
_FALLBACK = {
    T.IQ1_S: T.IQ4_NL, T.IQ1_M: T.IQ4_NL, T.IQ2_XXS: T.IQ4_NL, T.IQ2_XS: T.IQ4_NL, T.IQ2_S: T.IQ4_NL,
    T.IQ3_XXS: T.IQ4_NL, T.IQ3_S: T.IQ4_NL, T.IQ4_XS: T.IQ4_NL,
    T.Q2_K: T.Q4_0, T.Q3_K: T.Q4_0, T.TQ1_0: T.Q4_0, T.TQ2_0: T.Q4_0,
    T.Q4_K: T.Q5_0, T.Q5_K: T.Q5_1, T.Q6_K: T.Q8_0,
}


def _use_more_bits(i: int, n: int) -> bool:
    return i < n // 8 or i >= 7 * n // 8 or (i - n // 8) % 3 == 2


def _category(name: str) -> str:
    """tensor_get_category: broad roles by name, in llama.cpp's order of tests."""
    if name == "output.weight":
        return "output"
    if name == "token_embd.weight":
        return "token_embd"
    for key, cat in (("attn_qkv.weight", "attn_v"), ("attn_kv_b.weight", "attn_v"), ("attn_v.weight", "attn_v"),
                     ("attn_k.weight", "attn_k"), ("attn_q.weight", "attn_q"),
                     ("attn_output.weight", "attn_output"), ("ffn_up", "ffn_up"),
                     ("ffn_gate", "ffn_gate"), ("ffn_down", "ffn_down")):
        if key in name:
            return cat
    return "other"


def _quantizable(t: Tensor) -> bool:
    """tensor_allows_quantization for the tensors our architectures have."""
    return (len(t.shape) >= 2 and t.name.endswith("weight") and "_norm.weight" not in t.name
            and "ffn_gate_inp.weight" not in t.name)


@dataclass
class _State:
    n_attention_wv: int
    n_ffn_down: int
    n_gqa: int
    n_expert: int
    i_attention_wv: int = 0
    i_ffn_down: int = 0


def _low_bit_rule(ft: str, cat: str, new: T, s: _State) -> T:
    iq2s = ft in ("IQ2_S", "IQ2_M")
    if cat == "attn_v":
        new = T.Q4_K if s.n_gqa >= 4 or s.n_expert >= 4 else (T.IQ3_S if iq2s else T.Q2_K)
        s.i_attention_wv += 1
    elif s.n_expert == 8 and cat == "attn_k":
        new = T.Q4_K
    elif cat == "ffn_down":
        if s.i_ffn_down < s.n_ffn_down // 8:
            new = T.IQ3_S if iq2s else T.Q2_K
        s.i_ffn_down += 1
    elif cat == "attn_output":
        if s.n_expert == 8:
            new = T.Q5_K
        elif ft in ("IQ1_S", "IQ1_M"):
            new = T.IQ2_XXS
        elif iq2s:
            new = T.IQ3_S
    return new


def _attn_v_rule(ft: str, new: T, s: _State, imatrix: bool) -> T:
    i, n, gqa = s.i_attention_wv, s.n_attention_wv, s.n_gqa
    if ft == "Q2_K":
        new = T.Q4_K if gqa >= 4 else T.Q3_K
    elif ft == "IQ3_XXS":
        new = T.Q4_K if gqa >= 4 else (T.IQ3_XXS if imatrix else T.IQ3_S)
    elif ft == "IQ3_M":
        new = T.Q4_K
    elif ft == "Q3_K_M":
        new = T.Q5_K if i < 2 else T.Q4_K
    elif ft == "Q3_K_L" or ft in ("IQ4_NL", "IQ4_XS") and gqa >= 4:
        new = T.Q5_K
    elif ft in ("Q4_K_M", "Q5_K_M") and _use_more_bits(i, n):
        new = T.Q6_K
    elif ft == "Q4_K_S" and i < 4:
        new = T.Q5_K
    if s.n_expert == 8:
        new = T.Q8_0
    s.i_attention_wv += 1
    return new


def _ffn_down_rule(ft: str, new: T, layer: int, s: _State, imatrix: bool) -> T:
    i, n = layer, s.n_ffn_down
    if ft == "Q2_K":
        new = T.Q3_K
    elif ft == "IQ3_XXS" and not imatrix:
        new = T.Q4_K if i < n // 8 else T.Q3_K
    elif ft == "Q3_K_M":
        new = T.Q5_K if i < n // 16 else T.Q4_K
    elif ft == "IQ3_M" and (i < n // 8 or (s.n_expert == 8 and _use_more_bits(i, n))):
        new = T.Q4_K
    elif ft == "Q3_K_L":
        new = T.Q5_K
    elif ft == "Q4_K_M":
        if _use_more_bits(i, n):
            new = T.Q6_K
    elif i < n // 8 and ft in ("IQ4_NL", "IQ4_XS") and not imatrix:
        new = T.Q5_K
    elif ft == "Q5_K_M" and _use_more_bits(i, n):
        new = T.Q6_K
    elif ft == "Q4_K_S" and i < n // 8:
        new = T.Q5_K
    elif ft in ("Q4_0", "Q5_0") and imatrix and i < n // 8:
        new = T.Q4_1 if ft == "Q4_0" else T.Q5_1
    s.i_ffn_down += 1
    return new


_ATTN_OUTPUT = {"Q2_K": T.Q3_K, "IQ3_XXS": T.IQ3_S, "Q3_K_M": T.Q4_K, "Q3_K_L": T.Q5_K, "IQ3_M": T.Q4_K}
_ATTN_OUTPUT_8X = {"Q2_K", "IQ3_XXS", "Q3_K_S", "Q3_K_M", "IQ4_NL", "Q4_K_S", "Q4_K_M", "IQ3_M", "IQ4_XS"}


def _choose(ft: FileType, t: Tensor, cat: str, tied: bool, s: _State) -> T:
    """llama_tensor_get_type_impl, restricted to the file types in FILE_TYPES."""
    name, new = ft.name, ft.default
    if cat == "output" or (tied and cat == "token_embd"):
        if t.row % GGML_QUANT_SIZES[new][0]:
            return T.Q8_0
        if name in _OUTPUT_Q5K:
            return T.Q5_K
        return new if new == T.Q8_0 else T.Q6_K
    if cat == "token_embd":
        if name in ("IQ2_XXS", "IQ2_XS", "IQ1_S", "IQ1_M"):
            return T.Q2_K
        if name in ("IQ2_S", "IQ2_M", "IQ3_XXS"):
            return T.IQ3_S
        return new
    if name in _LOW_BIT:
        return _low_bit_rule(name, cat, new, s)
    if cat == "attn_v":
        return _attn_v_rule(name, new, s, ft.imatrix)
    if cat == "attn_k":
        return T.Q8_0 if s.n_expert == 8 else (T.IQ2_S if name == "IQ3_XXS" else new)
    if cat == "attn_q":
        return T.IQ2_S if name == "IQ3_XXS" else new
    if cat == "ffn_down":
        return _ffn_down_rule(name, new, t.layer or 0, s, ft.imatrix)
    if cat == "attn_output":
        if s.n_expert == 8:
            return T.Q5_K if name in _ATTN_OUTPUT_8X else new
        return _ATTN_OUTPUT.get(name, new)
    return new


def _fallback(t: Tensor, new: T) -> T:
    if t.row % GGML_QUANT_SIZES[new][0] == 0:
        return new
    new = _FALLBACK.get(new, new)
    return new if t.row % GGML_QUANT_SIZES[new][0] == 0 else T.F16


def _converted_type(t: Tensor, ft: FileType) -> T:
    """convert_hf_to_gguf.py for a checkpoint with MXFP4 experts (GptOssModel, ggml-org/llama.cpp
    convert_hf_to_gguf.py at 5bc7a74): the 3-D expert matrices (ffn_{gate,up,down}_exps.weight) stay
    MXFP4 (repack_mxfp4); 1-D tensors, `*_norm.weight`, ffn_gate_inp and any name not ending in
    `.weight` (the expert and attention biases) are F32; the other matrices take --outtype."""
    if len(t.shape) == 3 and t.name.endswith("_exps.weight"):
        return T.MXFP4
    if len(t.shape) <= 1 or t.name.endswith("_norm.weight") or "ffn_gate_inp" in t.name \
            or not t.name.endswith(".weight"):
        return T.F32
    return ft.default


def language_types(lm: LanguageModel, tensors: list[Tensor], ft: FileType) -> list[T]:
    """The GGML type llama-quantize gives each language-model tensor, from an F16/F32 source file.

    The source file (convert_hf_to_gguf) holds 1-D tensors in F32 and the rest in F16.
    """
    s = _State(
        n_attention_wv=sum(_category(t.name) == "attn_v" for t in tensors),
        n_ffn_down=lm.layers,
        n_gqa=lm.heads // lm.kv_heads,
        n_expert=lm.moe.experts if lm.moe else 1,
    )
    if ft.converted:
        return [_converted_type(t, ft) for t in tensors]
    quantized = GGML_QUANT_SIZES[ft.default][0] > 1
    out = []
    for t in tensors:
        if len(t.shape) < 2:
            out.append(T.F32)
        elif not quantized or not _quantizable(t):
            out.append(ft.default if not quantized else T.F16)
        else:
            out.append(_fallback(t, _choose(ft, t, _category(t.name), lm.tied_embeddings, s)))
    return out


def mmproj_type(t: Tensor) -> T:
    """A vision projector file (mmproj) as converted: F16, with 1-D tensors in F32."""
    return T.F32 if len(t.shape) < 2 else T.F16
