"""The tracer itself, live: the committed table re-traced on a cheap subset (so it cannot go stale), the
tracker shortcut against torch's own MemTracker, exact KV bytes, and honest refusals."""

from __future__ import annotations

import pytest

from app.catalog import SPECS_DIR, Catalog
from app.estimator.traces import load_traces

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from torch._subclasses.fake_tensor import FakeTensorMode  # noqa: E402
from torch.distributed._tools.mem_tracker import MemTracker  # noqa: E402

from app.measure.trace import KernelSafeMemTracker, PeakTracker, Untraceable, build_fake, config_for, trace, trace_row  # noqa: E402

LIVE = [("llama-3.1-8b", 1024, 1), ("gemma-2-9b-it", 1024, 1)]  # a few seconds each on an idle CPU
COMMITTED = {(r.model, r.context, r.batch, r.quantization): r for f in load_traces(SPECS_DIR / "traces")
             for r in f.rows}


def _tiny(**extra) -> transformers.LlamaConfig:
    return transformers.LlamaConfig(vocab_size=512, hidden_size=64, intermediate_size=176, num_hidden_layers=2,
                                    num_attention_heads=4, num_key_value_heads=2, head_dim=16, **extra)


@pytest.mark.parametrize(("slug", "context", "batch"), LIVE)
def test_committed_rows_retrace_identically(catalog: Catalog, slug: str, context: int, batch: int):
    committed = COMMITTED.get((slug, context, batch, "bf16"))
    if committed is None:
        pytest.fail(f"{slug} ctx {context} x{batch} is not in model_specs/traces/; "
                    "run python -m app.measure trace --all")
    (live,) = trace(catalog.model(slug), [context], [batch])
    for field in ("parameters_bytes", "kv_cache_bytes", "peak_bytes", "prefill_peak_bytes", "architecture",
                  "attn_implementation", "attention_kernels"):
        assert getattr(live, field) == getattr(committed, field), (
            f"{field} changed (torch {torch.__version__}, transformers {transformers.__version__}): "
            "regenerate with python -m app.measure trace --all")


def test_peak_tracker_agrees_with_torch_memtracker():
    with FakeTensorMode():
        model = build_fake(_tiny(), "bf16")
        ours = trace_row(model, "tiny", "bf16", 96, 3, tracker_class=PeakTracker)
        torchs = trace_row(model, "tiny", "bf16", 96, 3, tracker_class=KernelSafeMemTracker)
    assert (ours.peak_bytes, ours.prefill_peak_bytes, ours.kv_cache_bytes, ours.parameters_bytes) == (
        torchs.peak_bytes, torchs.prefill_peak_bytes, torchs.kv_cache_bytes, torchs.parameters_bytes)


def test_kv_cache_is_what_the_config_says():
    """2 (K, V) x layers x kv heads x head_dim x 2 bytes x tokens x batch, from the config's numbers."""
    with FakeTensorMode():
        row = trace_row(build_fake(_tiny(), "bf16"), "tiny", "bf16", 96, 3)
    assert row.kv_cache_bytes == 2 * 2 * 2 * 16 * 2 * 96 * 3
    assert row.attn_implementation == "sdpa" and row.peak_phase == "prefill"


def test_tied_embeddings_are_counted_once():
    with FakeTensorMode():
        tied = trace_row(build_fake(_tiny(tie_word_embeddings=True), "bf16"), "t", "bf16", 8, 1)
        untied = trace_row(build_fake(_tiny(tie_word_embeddings=False), "bf16"), "u", "bf16", 8, 1)
    assert untied.parameters_bytes - tied.parameters_bytes == 512 * 64 * 2


def test_remote_code_only_models_are_refused_with_the_reason(catalog: Catalog):
    with pytest.raises(Untraceable, match="trust_remote_code"):
        config_for(catalog.model("glm-4v-9b"))


class _Func(torch.nn.Module):
    """Like kernels' `Func` wrapper (kernels 0.19, used by transformers 5.25): a module outside the model."""

    def __init__(self, inner=None) -> None:
        super().__init__()
        self.inner = [inner]  # a list: not a child module, as the private wrapper is not one of the global's

    def forward(self, x):
        return self.inner[0](x) if self.inner[0] is not None else x * 2


_Func.__name__ = "Func"


class _UsesGlobalFunc(torch.nn.Module):
    def __init__(self, func) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(8, 8)
        self.func = [func]

    def forward(self, x):
        return self.func[0](self.lin(x))


def test_stock_memtracker_breaks_on_nested_same_named_modules_and_ours_does_not():
    """The failure seen with transformers 5.25.0 and torch 2.13.0 (mem_tracker._post_fw_hook KeyError once
    ModTracker's 'hierarchy ... messed up' warning is an error), reproduced without transformers."""
    import warnings

    model = _UsesGlobalFunc(_Func(_Func()))
    x = torch.ones(2, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        stock = MemTracker()
        stock.track_external(model)
        with pytest.raises(UserWarning), stock, torch.no_grad():
            model(x)
        ours = KernelSafeMemTracker()
        ours.track_external(model)
        with ours, torch.no_grad():
            model(x)
    assert max(ours.get_tracker_snapshot("peak").values(), key=lambda d: d["Total"])["Total"] > 0
