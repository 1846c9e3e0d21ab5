"""Partial offload (-ngl), host RAM and the mmproj, by llama.cpp's placement rules (src/llama-model.cpp).

No GPU here, so these check the rules' consequences rather than printed sizes: token_embd stays on the
host at any -ngl; -ngl n_layer+1 puts every layer and the output layer on the GPU; KV follows its layer;
nothing is lost or counted twice (GPU + host = the file, plus the CUDA row padding); the grid
(test_llamacpp_grid.py) checks the all-host figures against real llama.cpp.
"""

from __future__ import annotations

import pytest

from app.estimator import InvalidRequest, ModelSpec, VramRequest, estimate
from app.estimator.quantization import stored_weights


def _est(spec: ModelSpec, **kw):
    return estimate(spec, VramRequest(model=spec.slug, quantization="q4_k_m", context=8192, **kw))


def test_token_embd_stays_on_the_host_at_full_offload(llama: ModelSpec):
    e = _est(llama)
    w = stored_weights(llama, "q4_k_m")
    assert e.llamacpp.n_gpu_layers == 33 and e.llamacpp.output_on_gpu
    assert e.host.weights == w.token_embd_bytes and e.host.kv_cache == 0


@pytest.mark.parametrize("ngl", [0, 1, 10, 32])
def test_layers_split_between_gpu_and_host(llama: ModelSpec, ngl: int):
    e, full = _est(llama, n_gpu_layers=ngl), _est(llama)
    assert e.breakdown.kv_cache + e.host.kv_cache == full.breakdown.kv_cache
    per_layer_kv = full.breakdown.kv_cache // 32
    assert e.breakdown.kv_cache == max(ngl - 1, 0) * per_layer_kv  # -ngl N: the last N-1 layers + output
    assert e.llamacpp.output_on_gpu == (ngl >= 1)
    if ngl == 0:
        assert e.breakdown.weights == 0 and e.breakdown.activations == 0
        assert e.host.weights == pytest.approx(stored_weights(llama, "q4_k_m").total_bytes, rel=1e-5)


def test_fewer_gpu_layers_never_need_more_gpu(llama: ModelSpec):
    totals = [_est(llama, n_gpu_layers=n).total_bytes for n in range(0, 34, 4)]
    assert totals == sorted(totals)


def test_mmproj_both_ways(glm4v: ModelSpec):
    text = estimate(glm4v, VramRequest(model=glm4v.slug, quantization="q4_k_m", context=4096))
    loaded = estimate(glm4v, VramRequest(model=glm4v.slug, quantization="q4_k_m", context=4096, mmproj=True))
    assert not text.llamacpp.mmproj and loaded.llamacpp.mmproj  # llama-server: only with --mmproj (or -hf)
    assert loaded.breakdown.weights - text.breakdown.weights == text.llamacpp.mmproj_bytes > 0
    with pytest.raises(InvalidRequest) as err:
        estimate(glm4v, VramRequest(model=glm4v.slug, quantization="q4_k_m", images=1, mmproj=False))
    assert err.value.field == "mmproj"


def test_default_n_ctx_is_context_times_sequences(llama: ModelSpec):
    e = _est(llama, n_parallel=4)
    assert e.llamacpp.n_ctx == 4 * 8192 and e.llamacpp.n_ctx_seq == 8192
    unified = _est(llama, n_parallel=4, kv_unified=True, n_ctx=8192)
    assert unified.llamacpp.n_ctx == unified.llamacpp.n_ctx_seq == 8192
