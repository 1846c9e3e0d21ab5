"""Header-exact sparse GGUF files: a real model's metadata and tensor table, tensor data a hole.

The header is what llama.cpp's convert_hf_to_gguf.py + llama-quantize would write for the catalog
model (architecture keys from `app.estimator.gguf.arch`, every tensor from `params.model_tensors`, each one's type
from llama.cpp's per-tensor rules in `gguf.language_types`); the data section is never written
(`os.truncate` to the full size), so an 8B file costs no disk and llama.cpp mmaps zeros.
The vocabulary is the smallest llama.cpp accepts: `tokenizer.ggml.model = "none"` plus
`{arch}.vocab_size` (src/llama-vocab.cpp: "adding N dummy tokens").
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from gguf import GGUFWriter, LlamaFileType
from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType

from app.estimator.gguf import rules as gguf
from app.estimator.gguf.arch import ARCHS, SLUG_ARCH, metadata
from app.estimator.params import Tensor, language_tensors
from app.estimator.spec import LanguageModel, ModelSpec

# What convert_hf_to_gguf.py names (and shapes) differently per architecture from our GGUF-style tensor table, as
# llama.cpp's src/models/<arch>.cpp load_arch_tensors asks for it: (arch, our name suffix) -> its suffix. The
# byte count of each tensor is unchanged.
RENAMES: dict[str, dict[str, str]] = {
    # qwen35.cpp / qwen35moe.cpp / openai-moe.cpp: the pre-FFN norm is LLM_TENSOR_ATTN_POST_NORM
    "qwen35": {"ffn_norm.weight": "post_attention_norm.weight"},
    "qwen35moe": {"ffn_norm.weight": "post_attention_norm.weight"},
    "gpt-oss": {"ffn_norm.weight": "post_attention_norm.weight"},
    # lfm2.cpp: the final norm is LLM_TENSOR_OUTPUT_NORM_LFM2 ("token_embd_norm")
    "lfm2": {"output_norm.weight": "token_embd_norm.weight"},
    # gemma4.cpp: the dense MLP every layer keeps beside the experts is ffn_gate/up/down; the router's per-expert
    # scale is LLM_TENSOR_FFN_DOWN_EXPS "scale" (llama-model.cpp ffn_down_exps_s)
    "gemma4": {"ffn_gate_shexp.weight": "ffn_gate.weight", "ffn_up_shexp.weight": "ffn_up.weight",
               "ffn_down_shexp.weight": "ffn_down.weight", "ffn_gate_inp.expert_scale": "ffn_down_exps.scale"},
    # nemotron-h.cpp: every block's one norm is attn_norm (MLP blocks too)
    "nemotron_h": {"ffn_norm.weight": "attn_norm.weight"},
}
# Shapes convert_hf_to_gguf.py NemotronHModel writes (nemotron-h.cpp: ssm_a, ssm_d {1, heads}; ssm_norm
# {d_inner / groups, groups}), numpy order (outermost first)
RESHAPES: dict[str, dict[str, Callable[[LanguageModel, tuple[int, ...]], tuple[int, ...]]]] = {
    "nemotron_h": {"ssm_a": lambda lm, s: (s[0], 1), "ssm_d": lambda lm, s: (s[0], 1),
                   "ssm_norm.weight": lambda lm, s: (lm.mamba.groups, s[0] // lm.mamba.groups)},
}
# Convolution weights convert_hf_to_gguf.py squeezes to {kernel, channels} (Mamba/Qwen3Next/LFM2 modify_tensors)
SQUEEZED = ("ssm_conv1d.weight", "shortconv.conv.weight")


def _file_tensor(arch: str, lm: LanguageModel, t: Tensor) -> tuple[str, tuple[int, ...]]:
    name, shape = t.name, t.shape
    for suffix, reshape in RESHAPES.get(arch, {}).items():
        if name.endswith("." + suffix):
            shape = reshape(lm, shape)
    for ours, theirs in RENAMES.get(arch, {}).items():
        if name.endswith(ours) and (name == ours or name.endswith("." + ours)):
            name = name[: len(name) - len(ours)] + theirs
    if name.endswith(SQUEEZED):
        shape = tuple(d for d in shape if d != 1)
    return name, shape


@dataclass(frozen=True, slots=True)
class WrittenFile:
    path: Path
    arch: str
    tensors: int
    tensor_bytes: int  # sum of ggml_nbytes over tensors (what llama_model_size returns)
    file_bytes: int


def _nbytes(t: Tensor, ty: GGMLQuantizationType) -> int:
    block, size = GGML_QUANT_SIZES[ty]
    return t.rows * (t.row // block) * size


def write_sparse_gguf(spec: ModelSpec, file_type: str, path: Path, split_max_tensors: int = 0) -> WrittenFile:
    """Write `spec` as llama.cpp file type `file_type` (a gguf.FILE_TYPES slug) to `path`, data sparse.

    With `split_max_tensors`, write a split file (`-00001-of-0000N.gguf` parts, as gguf-split names them);
    the returned path is then the first part.
    """
    arch = ARCHS[SLUG_ARCH[spec.slug]]
    lm = spec.language_model
    tensors = language_tensors(lm)
    types = gguf.language_types(lm, tensors, gguf.FILE_TYPES[file_type])
    w = GGUFWriter(str(path), arch.name, split_max_tensors=split_max_tensors)
    w.add_name(spec.name)
    w.add_file_type(int(LlamaFileType[f"MOSTLY_{gguf.FILE_TYPES[file_type].name}"]))
    for key, value in metadata(arch, lm).items():
        full = f"{arch.name}.{key}"
        if isinstance(value, float):
            w.add_float32(full, value)
        elif isinstance(value, list):  # INT32 or BOOL array (gguf-py types it by its first element)
            w.add_array(full, value)
        else:
            w.add_uint32(full, value)
    w.add_tokenizer_model("none")
    for t, ty in zip(tensors, types, strict=True):
        name, shape = _file_tensor(arch.name, lm, t)
        w.add_tensor_info(name, shape, np.dtype(np.float32), _nbytes(t, ty), raw_dtype=ty)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    assert w.fout is not None and w.path is not None
    names = w.format_shard_names(w.path)
    ends = []
    for f, part in zip(w.fout, w.tensors, strict=True):
        f.flush()
        start = -(-f.tell() // w.data_alignment) * w.data_alignment
        ends.append(start + sum(-(-ti.nbytes // w.data_alignment) * w.data_alignment for ti in part.values()))
    w.close()
    for name, end in zip(names, ends, strict=True):
        os.truncate(name, end)
    total = sum(_nbytes(t, ty) for t, ty in zip(tensors, types, strict=True))
    return WrittenFile(Path(names[0]), arch.name, len(tensors), total, sum(ends))
