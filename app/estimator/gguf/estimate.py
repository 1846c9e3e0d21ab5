"""The llama.cpp estimate for a GGUF file the user has: its own tensors, its own architecture keys.

Weights are the file's tensors to the byte; KV and compute come from its `{arch}.*` keys. The knobs
are the same as for a catalog model (VramRequest); the runtime is llama.cpp.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from gguf import LlamaFileType
from gguf.constants import GGML_QUANT_SIZES
from pydantic import ValidationError

from app.estimator.errors import InvalidRequest
from app.estimator.estimate import GgufWeights, estimate
from app.estimator.gguf.reader import GgufHeader, language_model, merge_parts, read_header, type_mix
from app.estimator.gpus import Gpu
from app.estimator.quantization import FORMATS, StoredWeights
from app.estimator.runtimes.llamacpp_buffers import TensorEntry
from app.estimator.schema import GgufFileReport, GgufTypeRow, VramEstimate, VramRequest, WeightGroup
from app.estimator.spec import Card, LanguageModel, ModelSpec

_LAYER = re.compile(r"\.(\d+)\.")


def _elements(t: TensorEntry) -> int:
    block, size = GGML_QUANT_SIZES[t.ggml_type]
    return t.nbytes // size * block


def _stored(tensors: tuple[TensorEntry, ...]) -> StoredWeights:
    rows: dict[tuple[str, str], list[int]] = {}
    for t in tensors:
        row = rows.setdefault((_LAYER.sub(".N.", t.name, count=1), t.ggml_type.name), [0, 0, 0])
        row[0], row[1], row[2] = row[0] + 1, row[1] + _elements(t), row[2] + t.nbytes
    embd = next((t.nbytes for t in tensors if t.name == "token_embd.weight"), 0)
    groups = tuple(WeightGroup(name=n, part="language", type=ty, count=c, parameters=e, bytes=b)
                   for (n, ty), (c, e, b) in rows.items())
    return StoredWeights(groups, sum(t.nbytes for t in tensors), 0, sum(_elements(t) for t in tensors), embd)


def _file_type(h: GgufHeader) -> str | None:
    ft = h.metadata.get("general.file_type")
    try:
        return LlamaFileType(int(ft)).name if ft is not None else None
    except ValueError:
        return None


def _slug(filename: str) -> str:
    return re.sub(r"[^a-z0-9.\-]+", "-", filename.lower()).strip("-.") or "gguf-file"


def spec_from_header(h: GgufHeader, filename: str) -> ModelSpec:
    """A ModelSpec for the file (language model only: an mmproj is a separate file)."""
    source = f"GGUF header of {filename}"
    try:
        lm = LanguageModel.model_validate(language_model(h, source))
    except ValidationError as exc:  # keys each in range, yet together not a model (kv heads over heads, ...)
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InvalidRequest("file", f"the GGUF header's {h.arch} keys do not describe a model: {where}: "
                             f"{first['msg'][:200]}") from None
    name = str(h.metadata.get("general.name") or filename)[:200]  # echoed back: a short prefix at most
    card = Card(source=source, fields=[], description=[f"Read from the GGUF header of {filename}."])
    return ModelSpec(slug=_slug(filename), name=name, family=h.arch, hf_repo=filename, released="unknown",
                     license=str(h.metadata.get("general.license") or "unknown")[:200], modality="text",
                     language_model=lm, card=card)


def _quantization(ft: str | None) -> str:
    """Our format slug for the file type (for its label only; the weights are the file's)."""
    slug = (ft or "").removeprefix("MOSTLY_").lower()
    return slug if slug in FORMATS and FORMATS[slug].is_gguf else "f16"


def estimate_gguf(parts: Sequence[tuple[str, bytes]], req: VramRequest, gpus: Sequence[Gpu] = ()) -> VramEstimate:
    """llama.cpp estimate for a GGUF file given as the header bytes of each of its parts.

    Raises:
        InvalidRequest: not GGUF, truncated, parts missing, or keys llama.cpp needs are absent.
    """
    if not parts:
        raise InvalidRequest("file", "no file: send the first bytes (header) of a .gguf file")
    h = merge_parts([read_header(data, name) for name, data in parts])
    filename = parts[0][0][:200]
    spec = spec_from_header(h, filename)
    ft = _file_type(h)
    stored = _stored(h.tensors)
    fixed = req.model_copy(update={"model": spec.slug, "quantization": _quantization(ft), "runtime": "llama.cpp",
                                   "images": 0})
    est = estimate(spec, fixed, gpus, gguf=GgufWeights(stored, h.tensors, h.arch))
    mix = type_mix(h.tensors)
    label = "GGUF file " + ", ".join(f"{ty} x{n}" for ty, n, _ in mix)
    report = GgufFileReport(
        filename=filename, architecture=h.arch[:200], name=spec.name if h.metadata.get("general.name") else None,
        file_type=ft,
        parts=len(parts), tensors=len(h.tensors), tensor_bytes=stored.total_bytes,
        parameters=stored.file_elements, header_bytes=h.header_bytes,
        type_mix=[GgufTypeRow(type=ty, tensors=n, bytes=b) for ty, n, b in mix])
    return est.model_copy(update={"quantization_label": label, "gguf_file": report})
