"""The remote-code tracer itself: its prepare step refuses copies that are not the recorded files, and, where
the public copies are on this machine (VRAM_REMOTE_CODE, default /work/remote-code/<slug>/), committed rows
re-trace identically and an attention kernel's row matches the committed one."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from app.catalog import SPECS_DIR, Catalog
from app.estimator.traces import load_traces

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from app.measure.remote_code import REMOTE_MODELS, Untraceable, prepare, sha256, trace  # noqa: E402

ROOT = Path(os.environ.get("VRAM_REMOTE_CODE", "/work/remote-code"))
COMMITTED = {(r.model, r.context, r.batch, r.images, r.attn_implementation): r
             for f in load_traces(SPECS_DIR / "traces" / "remote") for r in f.rows}


def test_prepare_refuses_a_missing_or_different_copy(tmp_path: Path):
    with pytest.raises(Untraceable, match="missing"):
        prepare("glm-4-9b-chat", tmp_path)
    (tmp_path / "modeling_chatglm.py").write_text("# not the file\n")
    with pytest.raises(Untraceable, match="sha256"):
        prepare("glm-4-9b-chat", tmp_path)
    with pytest.raises(Untraceable, match="no remote code"):
        prepare("llama-3.1-8b", tmp_path)


def _have(slug: str) -> bool:
    return all((ROOT / slug / f.name).is_file() and sha256(ROOT / slug / f.name) == f.sha256
               for f in REMOTE_MODELS[slug].files)


@pytest.mark.parametrize(("slug", "context", "images", "attn"),
                         [("glm-4-9b-chat", 1024, 0, "eager"), ("glm-4v-9b", 1024, 1, "sdpa")])
def test_committed_remote_rows_retrace_identically(catalog: Catalog, slug, context, images, attn):
    if not _have(slug):
        pytest.skip(f"the public copies of {slug}'s remote code are not under {ROOT / slug}")
    committed = COMMITTED[(slug, context, 1, images, attn)]
    (live,) = trace(catalog.model(slug), ROOT / slug, [context], [1], [images], attn)
    for field in ("parameters_bytes", "kv_cache_bytes", "peak_bytes", "prefill_peak_bytes", "attention_kernels"):
        assert getattr(live, field) == getattr(committed, field), field


def test_a_committed_attention_kernel_row_retraces_identically(catalog: Catalog):
    from app.measure.trace import trace_attention

    committed = next(r for f in load_traces(SPECS_DIR / "traces" / "attention") for r in f.rows
                     if (r.model, r.context, r.attn_implementation) == ("qwen3-8b", 1024, "sdpa_math"))
    (live,) = trace_attention(catalog.model("qwen3-8b"), [1024], [1], "sdpa_math")
    for field in ("parameters_bytes", "kv_cache_bytes", "peak_bytes", "attention_kernels"):
        assert getattr(live, field) == getattr(committed, field), field
