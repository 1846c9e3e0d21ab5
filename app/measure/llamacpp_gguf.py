"""Header-exact sparse GGUF files: a real model's metadata and tensor table, tensor data a hole.

The header is what llama.cpp's convert_hf_to_gguf.py + llama-quantize would write for the catalog
model (architecture keys from `gguf_arch`, every tensor from `params.model_tensors`, each one's type
from llama.cpp's per-tensor rules in `gguf.language_types`); the data section is never written
(`os.truncate` to the full size), so an 8B file costs no disk and llama.cpp mmaps zeros.
The vocabulary is the smallest llama.cpp accepts: `tokenizer.ggml.model = "none"` plus
`{arch}.vocab_size` (src/llama-vocab.cpp: "adding N dummy tokens").
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from gguf import GGUFWriter, LlamaFileType
from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType

from app.estimator import gguf
from app.estimator.gguf_arch import ARCHS, SLUG_ARCH, metadata
from app.estimator.params import Tensor, language_tensors
from app.estimator.spec import ModelSpec


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


def write_sparse_gguf(spec: ModelSpec, file_type: str, path: Path) -> WrittenFile:
    """Write `spec` as llama.cpp file type `file_type` (a gguf.FILE_TYPES slug) to `path`, data sparse."""
    arch = ARCHS[SLUG_ARCH[spec.slug]]
    lm = spec.language_model
    tensors = language_tensors(lm)
    types = gguf.language_types(lm, tensors, gguf.FILE_TYPES[file_type])
    w = GGUFWriter(str(path), arch.name)
    w.add_name(spec.name)
    w.add_file_type(int(LlamaFileType[f"MOSTLY_{gguf.FILE_TYPES[file_type].name}"]) if file_type != "f16"
                    else int(LlamaFileType.MOSTLY_F16))
    for key, value in metadata(arch, lm).items():
        full = f"{arch.name}.{key}"
        if isinstance(value, float):
            w.add_float32(full, value)
        else:
            w.add_uint32(full, value)
    w.add_tokenizer_model("none")
    total = 0
    for t, ty in zip(tensors, types, strict=True):
        n = _nbytes(t, ty)
        total += n
        w.add_tensor_info(t.name, t.shape, np.dtype(np.float32), n, raw_dtype=ty)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    assert w.fout is not None
    f = w.fout[0]
    f.flush()
    align = w.data_alignment
    start = -(-f.tell() // align) * align
    data = sum(-(-_nbytes(t, ty) // align) * align for t, ty in zip(tensors, types, strict=True))
    w.close()
    os.truncate(path, start + data)
    return WrittenFile(path, arch.name, len(tensors), total, start + data)
