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
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from gguf import GGUFWriter, LlamaFileType
from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType

from app.estimator.gguf import rules as gguf
from app.estimator.gguf.arch import ARCHS, SLUG_ARCH, metadata
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
        else:
            w.add_uint32(full, value)
    w.add_tokenizer_model("none")
    for t, ty in zip(tensors, types, strict=True):
        w.add_tensor_info(t.name, t.shape, np.dtype(np.float32), _nbytes(t, ty), raw_dtype=ty)
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
