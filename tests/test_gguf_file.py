"""GGUF header import: parse, split parts, type mix, and the 422s for bad input (POST /api/gguf).

Files are written by app.measure.llamacpp_gguf (header-exact, data sparse). What llama.cpp itself
says about such files (llama_model_size, buffer sizes) is checked in test_llamacpp_grid.py; here the
references are the quantize README's published size (4.58 GiB, 4.8944 bpw for Llama-3.1-8B Q4_K_M,
shared/reference/quantization-and-runtimes.md s1) and the format's own rules.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.catalog import Catalog
from app.estimator import InvalidRequest, VramRequest
from app.estimator.gguf.estimate import estimate_gguf
from app.estimator.gguf.reader import MAX_HEADER_BYTES, merge_parts, read_header
from app.measure.llamacpp_gguf import write_sparse_gguf

HEAD = 1 << 20  # what the page sends: File.slice(0, 1 MiB) is enough for these headers


@pytest.fixture(scope="module")
def llama_file(catalog: Catalog, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_sparse_gguf(catalog.model("llama-3.1-8b"), "q4_k_m", tmp_path_factory.mktemp("g") / "l.gguf").path


@pytest.fixture(scope="module")
def split_files(catalog: Catalog, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    first = write_sparse_gguf(catalog.model("llama-3.1-8b"), "q4_k_m", tmp_path_factory.mktemp("s") / "l.gguf",
                              split_max_tensors=100).path
    return sorted(first.parent.glob("l-0000*-of-00003.gguf"))


def _head(path: Path, n: int = HEAD) -> bytes:
    with path.open("rb") as f:
        return f.read(n)


def test_header_gives_every_tensor_and_the_published_size(llama_file: Path):
    h = read_header(_head(llama_file))
    assert h.arch == "llama" and len(h.tensors) == 292
    total = sum(t.nbytes for t in h.tensors)
    assert round(total / 2**30, 2) == 4.58  # quantize README: Q4_K_M 4.58 GiB
    assert round(8 * total / 8_030_261_312, 4) == 4.8944  # ... and 4.8944 bpw over the file's elements
    assert h.header_bytes + sum(-(-t.nbytes // 32) * 32 for t in h.tensors) == llama_file.stat().st_size


def test_type_mix_matches_the_reference(llama_file: Path):
    est = estimate_gguf([("l.gguf", _head(llama_file))], VramRequest(model="x"))
    mix = {r.type: r.tensors for r in est.gguf_file.type_mix}
    assert mix == {"Q4_K": 193, "Q6_K": 33, "F32": 66}  # 65 F32 norms + Llama-3.1's rope_freqs


def test_split_parts_add_up_to_the_single_file(llama_file: Path, split_files: list[Path]):
    whole = read_header(_head(llama_file))
    parts = [read_header(_head(p), p.name) for p in split_files]
    merged = merge_parts(parts)
    assert [t.name for t in merged.tensors] == [t.name for t in whole.tensors]
    assert sum(t.nbytes for t in merged.tensors) == sum(t.nbytes for t in whole.tensors)
    with pytest.raises(InvalidRequest, match="all its parts") as err:
        merge_parts(parts[:2])
    assert err.value.field == "file"


@pytest.mark.parametrize(("data", "why"), [
    (b"", "not a GGUF file"),
    (b"PK\x03\x04" + bytes(100), "not a GGUF file"),
    (b"GGUF", "truncated"),
])
def test_bad_headers_name_what_is_wrong(data: bytes, why: str):
    with pytest.raises(InvalidRequest, match=why):
        read_header(data)


def test_truncated_header_is_a_422(client: TestClient, llama_file: Path):
    r = client.post("/api/gguf", files={"file": ("l.gguf", _head(llama_file, 4000))})
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "file"]
    assert "truncated" in r.json()["detail"][0]["msg"]


def test_header_size_is_capped(client: TestClient):
    r = client.post("/api/gguf", files={"file": ("big.gguf", b"GGUF" + bytes(MAX_HEADER_BYTES))})
    assert r.status_code == 422 and "MiB of header" in r.json()["detail"][0]["msg"]


def test_upload_estimate_uses_the_knobs(client: TestClient, llama_file: Path):
    head = _head(llama_file)
    base = client.post("/api/gguf", files={"file": ("l.gguf", head)}, data={"context": "8192"}).json()
    q8 = client.post("/api/gguf", files={"file": ("l.gguf", head)},
                     data={"context": "8192", "cache_type_k": "q8_0", "cache_type_v": "q8_0"}).json()
    assert base["gguf_file"]["tensor_bytes"] == 4_912_898_304
    assert base["llamacpp"]["n_ctx"] == 8192 and base["breakdown"]["kv_cache"] == 8192 * 32 * 2 * 8 * 128 * 2
    assert q8["breakdown"]["kv_cache"] == 8192 * 32 * 2 * 8 * 128 // 32 * 34  # q8_0: 34 B per 32 values
    assert q8["breakdown"]["weights"] == base["breakdown"]["weights"]


def test_upload_knob_errors_name_the_field(client: TestClient, llama_file: Path):
    r = client.post("/api/gguf", files={"file": ("l.gguf", _head(llama_file))},
                    data={"cache_type_v": "q4_0", "flash_attention": "false"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "flash_attention"]
    r = client.post("/api/gguf", files={"file": ("l.gguf", _head(llama_file))}, data={"n_ubatch": "0"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "n_ubatch"]
