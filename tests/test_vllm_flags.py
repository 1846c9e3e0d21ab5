"""vLLM flags in the API (issue 10): vLLM's names and defaults, 422 naming the field and what it allows."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from app.estimator import VramRequest

STATE = {"model": "llama-3.1-8b", "runtime": "vllm", "context": 8192, "gpu": "h100-80gb"}


def test_defaults_are_vllms():
    """vLLM's documented defaults: --gpu-memory-utilization 0.9, --kv-cache-dtype auto, --dtype auto,
    --pipeline-parallel-size 1, CUDA graphs on (vllm/engine/arg_utils.py); --block-size unset: the release's."""
    r = VramRequest(model="x")
    assert (r.gpu_memory_utilization, r.block_size, r.kv_cache_dtype, r.dtype) == (0.9, None, "auto", "auto")
    assert (r.pipeline_parallel_size, r.enforce_eager, r.gpu_count) == (1, False, 1)


@pytest.mark.parametrize(("version", "block"), [("0.11.0", 16), ("0.19.0", 16), ("0.32.0", 16), ("0.33.0", 16),
                                                ("0.34.0", 64), (None, 64)])
def test_default_block_size_per_release(catalog, version: str | None, block: int):
    """vLLM's CacheConfig.DEFAULT_BLOCK_SIZE, read in each wheel: 0.11.0 platforms/cuda.py:126-127 (16), 0.19.0
    config/cache.py:34 (16), 0.32.0 :72 (16), 0.33.0 :185 (16), 0.34.0 :185 (64; FlashAttention keeps it,
    platforms/interface.py:781-791). An explicit --block-size wins."""
    from app.estimator import estimate

    req = {"model": "llama-3.1-8b", "runtime": "vllm", "context": 8192, "gpu": "h100-80gb", "vllm_version": version}
    d = estimate(catalog.model("llama-3.1-8b"), VramRequest(**req), catalog.gpus).vllm
    assert d.block_size == block
    assert d.kv_block_bytes == block * 32 * 2 * 8 * 128 * 2  # 32 layers x K,V x 8 KV heads x 128 x bf16
    given = estimate(catalog.model("llama-3.1-8b"), VramRequest(**req, block_size=32), catalog.gpus).vllm
    assert given.block_size == 32


@pytest.mark.parametrize(("given", "gpu_count", "tp"), [
    ({"tensor_parallel_size": 4}, 4, 4),
    ({"tensor_parallel_size": 2, "pipeline_parallel_size": 2}, 4, 2),
    ({"pipeline_parallel_size": 2}, 2, None),
    ({"gpu_count": 4, "tensor_parallel_size": 4}, 4, 4),
    ({"gpu_count": 2}, 2, None),
])
def test_gpu_count_is_tp_times_pp(given: dict, gpu_count: int, tp: int | None):
    r = VramRequest(model="x", **given)
    assert (r.gpu_count, r.tensor_parallel_size) == (gpu_count, tp)


@pytest.mark.parametrize(("params", "field", "says"), [
    ({"gpu_memory_utilization": 1.5}, "gpu_memory_utilization", "less than or equal to 1"),
    ({"gpu_memory_utilization": 0}, "gpu_memory_utilization", "greater than 0"),
    ({"kv_cache_dtype": "int8"}, "kv_cache_dtype", "'auto', 'fp8', 'fp8_e4m3' or 'fp8_e5m2'"),
    ({"dtype": "half8"}, "dtype", "'auto', 'bfloat16', 'float16' or 'float32'"),
    ({"block_size": 24}, "block_size", "1, 8, 16, 32, 64, 128 or 256"),
    ({"max_model_len": 4096}, "max_model_len", "allowed: >= context"),
    ({"max_num_seqs": 0}, "max_num_seqs", "greater than or equal to 1"),
    ({"max_num_batched_tokens": 0}, "max_num_batched_tokens", "greater than or equal to 1"),
    ({"gpu_count": 4, "tensor_parallel_size": 2}, "tensor_parallel_size", "must equal gpu_count (4)"),
    ({"gpu_count": 3, "pipeline_parallel_size": 2}, "pipeline_parallel_size", "must divide gpu_count (3)"),
    ({"vllm_version": "latest"}, "vllm_version", "should match pattern"),
    ({"enforce_eager": "maybe"}, "enforce_eager", "valid boolean"),
], ids=lambda v: str(v) if isinstance(v, str) else None)
def test_bad_vllm_flags_give_422_naming_the_field(client: TestClient, params: dict, field: str, says: str):
    for r in (client.get("/api/vram", params={**STATE, **params}), client.post("/api/vram", json={**STATE, **params})):
        assert r.status_code == 422, r.text
        assert any(e["loc"][-1] == field and says in e["msg"] for e in r.json()["detail"]), r.json()


def test_null_json_fields_mean_the_default(client: TestClient):
    r = client.post("/api/vram", json={**STATE, "tensor_parallel_size": None, "max_model_len": None})
    assert r.status_code == 200 and r.json()["vllm"]["tensor_parallel_size"] == 1


def test_blank_form_fields_mean_the_default(client: TestClient):
    form = {**STATE, "max_num_seqs": "", "tensor_parallel_size": "", "enforce_eager": "", "dtype": ""}
    assert client.post("/api/vram", data=form).status_code == 200


def test_max_model_len_defaults_to_the_sequence_and_is_reported(client: TestClient):
    body = client.get("/api/vram", params={**STATE, "context": 4096}).json()
    assert body["vllm"]["max_model_len"] == 4096
    body = client.get("/api/vram", params={**STATE, "context": 4096, "max_model_len": 131072}).json()
    assert body["vllm"]["max_model_len"] == 131072
    # concurrency is for the requested length (context), not for max_model_len
    assert body["vllm"]["max_concurrency"] == round(body["vllm"]["kv_tokens"] / 4096, 2)
    long = client.get("/api/vram", params={**STATE, "context": 4096, "max_model_len": 262144}).json()
    assert any("VLLM_ALLOW_LONG_MAX_MODEL_LEN" in w for w in long["warnings"])


def test_kv_cache_and_kv_cache_dtype_must_agree(client: TestClient):
    r = client.get("/api/vram", params={**STATE, "kv_cache": "bf16", "kv_cache_dtype": "fp8"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"][-1] == "kv_cache_dtype"
    ok = client.get("/api/vram", params={**STATE, "kv_cache": "fp8", "kv_cache_dtype": "fp8_e4m3"}).json()
    assert ok["request"]["kv_cache"] == "fp8" and ok["vllm"]["kv_cache_dtype"] == "fp8_e4m3"


def test_dtype_float32_makes_weights_and_kv_fp32(client: TestClient):
    """V1: `--dtype float32` gives fp32 weights (29.98 GiB) and an fp32 KV cache (175,296 tokens)."""
    body = client.get("/api/vram", params={**STATE, "dtype": "float32"}).json()
    assert body["request"]["quantization"] == "fp32" and body["request"]["kv_cache"] == "fp32"
    assert body["detail"]["kv_bytes_per_token"] == 32 * 2 * 8 * 128 * 4
    r = client.get("/api/vram", params={**STATE, "dtype": "float32", "quantization": "bf16"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"][-1] == "dtype"


def test_runtimes_endpoint_lists_the_vllm_release_ranges(client: TestClient):
    vllm = next(r for r in client.get("/api/runtimes").json() if r["slug"] == "vllm")
    assert vllm["release_ranges"][0] == "0.7" and "0.18-0.19" in vllm["release_ranges"]
    assert {"bf16", "fp16", "fp32", "fp8"} == set(vllm["kv_cache"])
