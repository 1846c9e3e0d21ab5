"""The per-spec caches that keep estimate() fast answer exactly what a cold computation answers.

A warm spec (its caches filled by every request before) is compared with a deep copy of it, whose caches are
empty (memo.per_spec keys on the object), request by request, field by field."""

from __future__ import annotations

import itertools

import pytest

from app.catalog import Catalog
from app.estimator import VramRequest, estimate
from app.estimator.kv_cache import KV_TYPES
from app.estimator.quantization import FORMATS
from app.estimator.runtimes import vllm_flags
from app.estimator.runtimes.vllm_profiles import large_batch_gpu

# (model, runtime, quantization): a dense vision model, a hybrid (Gated DeltaNet + full attention), an MoE, a
# sliding-window model; every runtime
CASES = [
    ("glm-4v-9b", "transformers", "bf16"), ("glm-4v-9b", "llama.cpp", "q4_k_m"), ("glm-4v-9b", "vllm", "awq-int4"),
    ("qwen3.5-27b", "transformers", "bf16"), ("qwen3.5-27b", "llama.cpp", "q4_k_m"), ("qwen3.5-27b", "vllm", "bf16"),
    ("qwen3-30b-a3b", "transformers", "bf16"), ("qwen3-30b-a3b", "llama.cpp", "q8_0"),
    ("qwen3-30b-a3b", "vllm", "fp8"), ("gemma-2-9b-it", "llama.cpp", "q4_k_m"), ("gemma-2-9b-it", "vllm", "bf16"),
    ("gemma-3-27b-it", "transformers", "bf16"), ("gemma-3-27b-it", "llama.cpp", "q4_k_m"),
    ("nemotron-3-nano-30b-a3b", "llama.cpp", "q4_k_m"), ("nemotron-3-nano-30b-a3b", "vllm", "bf16"),
]
KNOBS = {
    "transformers": [{}, {"batch": 3, "context": 70000}],
    "llama.cpp": [{}, {"n_gpu_layers": 7}, {"n_gpu_layers": 0, "n_parallel": 2}, {"cache_type_k": "q8_0"},
                  {"n_gpu_layers": 12, "context": 131072, "kv_unified": True, "n_parallel": 4}],
    "vllm": [{}, {"gpu_count": 2}, {"gpu_count": 4, "pipeline_parallel_size": 2}, {"kv_cache_dtype": "fp8"},
             {"max_num_seqs": 64, "gpu": "a100-80gb"}],
}


def _requests(model: str, runtime: str, quantization: str) -> list[VramRequest]:
    out = []
    for knobs, context, gpu in itertools.product(KNOBS[runtime], (4096, 32768), ("rtx-4090", "h100-80gb", None)):
        fields = {"model": model, "runtime": runtime, "quantization": quantization, "context": context, "gpu": gpu,
                  **knobs}
        out.append(VramRequest(**fields))
    return out


@pytest.mark.parametrize(("model", "runtime", "quantization"), CASES)
def test_warm_caches_answer_as_cold_ones(catalog: Catalog, model: str, runtime: str, quantization: str):
    spec = catalog.model(model)
    answered = 0
    for req in _requests(model, runtime, quantization):
        try:
            warm = estimate(spec, req, catalog.gpus)
        except ValueError as e:  # a combination the model refuses: the cold copy must refuse it alike
            with pytest.raises(type(e)):
                estimate(spec.model_copy(deep=True), req, catalog.gpus)
            continue
        cold = estimate(spec.model_copy(deep=True), req, catalog.gpus)
        assert warm.model_dump() == cold.model_dump(), req
        answered += 1
    assert answered >= 8


# Another value for every VramRequest field vllm_flags.REQUEST_FIELDS leaves out (model, config, quantization and
# kv_cache pick the spec, format and KV type, which key the kept flags besides those fields)
OTHER_VALUES = {
    "context": 30000, "batch": 3, "images": 1, "image_size": "1024x768", "runtime": "llama.cpp",
    "flash_attention": False, "gpu": "h100-80gb", "trace": True, "trust_remote_code": True,
    "attn_implementation": "eager", "llm_int8_skip_modules": ["lm_head"], "n_ctx": 4096, "n_batch": 512,
    "n_ubatch": 256, "n_parallel": 4, "kv_unified": True, "n_gpu_layers": 7, "cache_type_k": "q8_0",
    "cache_type_v": "q4_0", "embeddings": True, "backend": "rocm", "free_memory": 8 << 30, "fit_target": 0,
    "fit_ctx": 0, "mmproj": False,
}


@pytest.mark.parametrize("model", ["llama-3.1-8b", "qwen3.5-27b"])
def test_vllm_flags_are_kept_per_the_fields_they_read(catalog: Catalog, model: str):
    """vllm_flags.resolve keeps the flags (all but max_model_len) per model, format, KV type, GPU batch class and the
    request's REQUEST_FIELDS, and whether gpu_memory_utilization was given: built afresh, they are the same whatever
    any other request field says, so a kept entry never answers a request it does not describe; and every request's
    flags (kept or not, on a context none asked before) equal the fresh ones with its max_model_len."""
    spec = catalog.model(model)
    fmt, kv = FORMATS["bf16"], KV_TYPES["bf16"]
    left_out = set(VramRequest.model_fields) - set(vllm_flags.REQUEST_FIELDS) - {"model", "config", "quantization",
                                                                                  "kv_cache"}
    assert left_out == set(OTHER_VALUES)  # a new request field: decide whether the vLLM flags read it
    extra = ({"speculative_method": "mtp"} if spec.language_model.mtp_draft
             else {"enforce_eager": True, "block_size": 32})
    for knobs in ({}, {"vllm_version": "0.7.0"}, {"vllm_version": "0.34.0", "gpu_memory_utilization": 0.9},
                  {"gpu_count": 2, "max_num_seqs": 64}, {"max_model_len": 40000}, extra):
        asked = VramRequest(model=model, runtime="vllm", **knobs)
        for large in (True, False):
            expected = vllm_flags._base(spec, fmt, kv, asked, large)
            for name, value in OTHER_VALUES.items():
                other = VramRequest(**{**asked.model_dump(exclude_unset=True), name: value})
                assert vllm_flags._base(spec, fmt, kv, other, large) == expected, (knobs, name)
        for context in (1000, 1001, 32768):
            req = VramRequest(**{**asked.model_dump(exclude_unset=True), "context": context})
            for gpu_bytes, slug in ((24 << 30, "rtx-4090"), (80 << 30, "a100-80gb"), (None, None)):
                f = vllm_flags.resolve(spec, fmt, kv, req, context, gpu_bytes, slug)
                fresh = vllm_flags._base(spec, fmt, kv, req, large_batch_gpu(gpu_bytes, slug == "a100-80gb"))
                length = req.max_model_len or context
                tokens = fresh.max_num_batched_tokens  # V0 without the flag: max(max_model_len, 2048)
                if f.profile.engine == "V0" and not req.max_num_batched_tokens:
                    tokens = max(length, 2048)
                assert f == vllm_flags.evolve(fresh, max_model_len=length, max_num_batched_tokens=tokens), \
                    (knobs, context, slug)


@pytest.mark.parametrize("model", ["llama-3.1-8b", "qwen3.5-27b", "gemma-2-9b-it"])
def test_vllm_flags_for_another_gpu_equal_resolve(catalog: Catalog, model: str):
    """fits() on every GPU reuses the asked GPU's flags with that GPU's batch defaults: the same flags resolve
    answers there."""
    spec = catalog.model(model)
    fmt, kv = FORMATS["bf16"], KV_TYPES["bf16"]
    for knobs in ({}, {"max_num_seqs": 8}, {"gpu_count": 2}, {"vllm_version": "0.7.0"}):
        req = VramRequest(model=model, runtime="vllm", context=8192, **knobs)
        asked = vllm_flags.resolve(spec, fmt, kv, req, 8192, 24 << 30, "rtx-4090")
        for g in catalog.gpus:
            per_gpu = g.cuda_total
            expected = vllm_flags.resolve(spec, fmt, kv, req, 8192, per_gpu, g.slug)
            assert vllm_flags.for_gpu(asked, vllm_flags.batch_for(asked, req, per_gpu, g.slug)) == expected


@pytest.mark.parametrize("model", ["llama-3.1-8b", "qwen3.5-27b", "gemma-2-9b-it", "qwen3-30b-a3b"])
def test_vllm_fit_rows_equal_the_full_verdict(catalog: Catalog, model: str):
    """The fit list asks vllm_advice.StartRule (closed form over the GPU's total) on every GPU: it answers what
    vllm_advice.verdict answers there and on a sweep of totals, starting or not, for every release rule (0.34's
    extensible cache included) and parallel layout."""
    from app.estimator.runtimes import vllm_advice, vllm_memory

    spec = catalog.model(model)
    fmt, kv = FORMATS["bf16"], KV_TYPES["bf16"]
    outcomes = set()
    for knobs in ({}, {"gpu_count": 2}, {"gpu_count": 4, "pipeline_parallel_size": 2}, {"vllm_version": "0.34.0"},
                  {"vllm_version": "0.7.0"}, {"gpu_memory_utilization": 0.98}, {"context": 131072}):
        context = knobs.pop("context", 8192)
        req = VramRequest(model=model, runtime="vllm", context=context, **knobs)
        f = vllm_flags.resolve(spec, fmt, kv, req, context, None, None)
        stages = vllm_memory.stages(spec, fmt, f)
        rule = vllm_advice.StartRule.of(f, stages, vllm_advice.blocks_per_sequence(f))
        totals = [g.cuda_total for g in catalog.gpus] + list(range(6 << 30, 200 << 30, 977 << 20))  # and a sweep
        expected = []
        for total in totals:
            v = vllm_advice.verdict(f, stages, total)
            assert rule(total) == (v.starts, v.headroom), (knobs, total)
            expected.append((v.starts, v.headroom))
            outcomes.add(v.starts)
        assert rule.many(totals) == expected, knobs
    assert outcomes == {True, False}  # both branches were compared


@pytest.mark.parametrize("model", ["llama-3.1-8b", "qwen3.5-27b", "gemma-2-9b-it", "qwen3-30b-a3b", "gemma-4-26b-a4b"])
def test_vllm_fit_rule_per_gpu_class_equals_the_rule_of_that_gpus_flags(catalog: Catalog, model: str):
    """The fit list builds each GPU class's start rule from the asked GPU's flags and that class's batch defaults,
    without resolving the flags there: it equals StartRule.of the flags vllm_flags.resolve gives on that GPU (their
    stages and blocks per sequence), for every catalog GPU, release and layout, and for a context never asked."""
    from app.estimator.runtimes import vllm as vllm_runtime
    from app.estimator.runtimes import vllm_advice, vllm_memory

    spec = catalog.model(model)
    fmt, kv = FORMATS["bf16"], KV_TYPES["bf16"]
    for knobs in ({}, {"gpu_count": 2}, {"gpu_count": 4, "pipeline_parallel_size": 2}, {"vllm_version": "0.7.0"},
                  {"vllm_version": "0.26.0"}, {"context": 131071}, {"max_num_seqs": 64}):
        context = knobs.pop("context", 8192)
        req = VramRequest(model=model, runtime="vllm", context=context, gpu="rtx-4090", **knobs)
        asked = vllm_flags.resolve(spec, fmt, kv, req, context, 24 << 30, "rtx-4090")
        # a setup is shared by every max_model_len of its flags (V0: of its batched tokens): built from another's
        other = vllm_flags.resolve(spec, fmt, kv, req.model_copy(update={"context": 1000}), 1000, 24 << 30, "rtx-4090")
        shared = other.max_num_batched_tokens == asked.max_num_batched_tokens
        setup = vllm_runtime._Setup(spec, fmt, other if shared else asked, req.vllm_version)
        for g in catalog.gpus:
            f = vllm_flags.resolve(spec, fmt, kv, req, context, g.cuda_total, g.slug)
            expected = vllm_advice.StartRule.of(f, vllm_memory.stages(spec, fmt, f), vllm_advice.blocks_per_sequence(f))
            example = (g.cuda_total, g.slug, large_batch_gpu(g.cuda_total, "a100" in g.slug))
            assert setup.start_rule(spec, fmt, asked, req, example) == expected, (knobs, g.slug)


@pytest.mark.parametrize(("model", "file_type"), [("llama-3.1-8b", "q4_k_m"), ("qwen3-30b-a3b", "q8_0"),
                                                  ("gemma-4-26b-a4b", "q4_k_m"), ("nemotron-h-56b-base-8k", "q4_k_m")])
def test_largest_host_tensor_walked_once_equals_the_walk(catalog: Catalog, model: str, file_type: str):
    """Partial offload's largest host tensor comes from a per-table prefix maximum: on every -ngl it equals the
    largest tensor of the layers LlamaContext.layer_on_gpu leaves on the host, walked tensor by tensor."""
    import dataclasses

    from app.estimator.runtimes.llamacpp_buffers import catalog_tensors, largest_host_tensor
    from app.estimator.runtimes.llamacpp_context import resolve_context

    spec = catalog.model(model)
    lm, tensors = spec.language_model, catalog_tensors(spec, file_type)
    base = resolve_context(lm, VramRequest(model=model, runtime="llama.cpp"), 4096, KV_TYPES["fp16"], True, 0)
    seen = set()
    for ngl in range(lm.layers + 3):
        c = dataclasses.replace(base, n_gpu_layers=ngl)
        walked = 0 if ngl > lm.layers else max(
            (t.nbytes for t in tensors if t.layer is not None and not c.layer_on_gpu(t.layer, lm.layers)), default=0)
        assert largest_host_tensor(tensors, c, lm) == walked, ngl
        seen.add(walked)
    assert len(seen) >= 2  # full offload (0) and at least one host layer


@pytest.mark.parametrize("model", ["llama-3.1-8b", "qwen3.5-27b", "gemma-2-9b-it", "qwen3-30b-a3b", "glm-4v-9b"])
def test_vllm_stages_kept_per_flags_equal_the_flags_own(catalog: Catalog, model: str):
    """vllm_memory.stages keeps each model's stages per flags with max_model_len and gpu_memory_utilization zeroed:
    on every layout, release and length they equal the stages built from the request's own flags."""
    from app.estimator.runtimes import vllm_memory

    spec = catalog.model(model)
    fmt, kv = FORMATS["bf16"], KV_TYPES["bf16"]
    for knobs in ({}, {"gpu_count": 2}, {"gpu_count": 4, "pipeline_parallel_size": 2}, {"vllm_version": "0.34.0"},
                  {"vllm_version": "0.7.0"}, {"gpu_memory_utilization": 0.5}, {"enforce_eager": True}):
        for context in (1024, 8192, 131072):
            req = VramRequest(model=model, runtime="vllm", context=context, **knobs)
            f = vllm_flags.resolve(spec, fmt, kv, req, context, 24 << 30, "rtx-4090")
            assert vllm_memory.stages(spec, fmt, f) == vllm_memory._stages(spec, fmt, f), (knobs, context)


@pytest.mark.parametrize("model", ["llama-3.1-8b", "qwen3.5-27b", "gemma-2-9b-it", "glm-4v-9b"])
def test_vllm_fit_rows_say_what_each_gpus_own_answer_says(catalog: Catalog, model: str):
    """A vLLM answer's fit list is built from one start rule per GPU class (vllm._FitPlan), not from a verdict per
    GPU: each of its rows says what the answer asked for that GPU says (it starts or not; its headroom per GPU x
    the count), starting or not, on every release rule and layout."""
    spec = catalog.model(model)
    outcomes = set()
    for knobs in ({}, {"gpu_count": 2}, {"vllm_version": "0.19.0"}, {"vllm_version": "0.7.0"},
                  {"context": 131072}, {"gpu_memory_utilization": 0.98}):
        fields = {"model": model, "runtime": "vllm", "context": 8192, **knobs}
        rows = estimate(spec, VramRequest(**fields), catalog.gpus).fits
        assert len(rows) > 10
        for row in rows:
            own = estimate(spec, VramRequest(**fields, gpu=row.gpu), catalog.gpus).vllm
            assert (row.fits, row.headroom_bytes) == (own.starts, own.headroom_bytes * row.count), (knobs, row.gpu)
            outcomes.add(row.fits)
    assert outcomes == {True, False}  # both branches were compared
