"""2026 llama.cpp logs: the memory breakdown table, --fit's projections and --fit-print, compared term by term.

Fixtures (each with a .source.json naming its public URL): g13_ollama_0.30_gptoss120b_rocm (ollama issues
16416/16480) and fit_print_llamacpp_pr22171_gemma3_4b (llama.cpp PR 22171). Expected values are typed from the
log text. Which of our figures are fits on these very logs is said in tests/test_llamacpp_backends.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

from typer.testing import CliRunner

from app.catalog import Catalog
from app.catalog.importer import spec_from_config
from app.cli import cli
from app.logs import check_log, parse_log

FIXTURES = Path(__file__).parent / "fixtures" / "logs"
G13 = FIXTURES / "g13_ollama_0.30_gptoss120b_rocm.log"
G12 = FIXTURES / "fit_print_llamacpp_pr22171_gemma3_4b.log"


def _printed(log, key: str) -> list[tuple[str | None, str, int]]:
    return [(f.device, f.printed, f.line) for f in log.all(key)]


def test_g13_breakdown_fit_and_buffers_parsed():
    log = parse_log(G13.read_text())
    assert _printed(log, "mb_model") == [("ROCm0", "61223", 2), ("host", "1104", 3)]
    assert _printed(log, "mb_context") == [("ROCm0", "9306", 2), ("host", "0", 3)]
    assert _printed(log, "mb_compute") == [("ROCm0", "796", 2), ("host", "281", 3)]
    assert _printed(log, "mb_unaccounted") == [("ROCm0", "-76586", 2)]  # total < free on this iGPU
    assert _printed(log, "mb_free") == [("ROCm0", "120459", 2)]
    assert _printed(log, "fit_projected") == [(None, "71326", 4)]  # common_params_fit_impl
    assert _printed(log, "kv_buffer") == [("ROCm0", "9216.00", 16), ("ROCm0", "90.00", 19)]
    assert _printed(log, "output_buffer") == [("ROCm_Host", "1.53", 14)]
    assert log.setting("meta.arch") == "gpt-oss" and log.setting("n_ctx") == 262144


def _terms(report) -> dict[str, tuple[float, float | None, bool | None]]:
    return {t.term: (t.measured, t.estimated, t.unsafe) for t in report.terms}


def test_g13_every_term_within_3_percent_and_none_under(catalog: Catalog):
    """The excerpt names no model: both issues are about gpt-oss-120b (the sidecar says so too)."""
    report = check_log(G13.read_text(), catalog, {"model": "gpt-oss-120b"})
    assert report.request is not None
    assert report.request["backend"] == "rocm" and report.request["quantization"] == "mxfp4_moe"
    terms = _terms(report)
    assert set(terms) >= {"weights on GPU", "weights in host RAM", "KV cache", "compute buffer on GPU",
                          "compute buffer in host RAM", "output buffer", "device memory --fit projects"}
    for name, (measured, ours, unsafe) in terms.items():
        assert ours is not None and abs(ours - measured) <= 0.03 * measured and unsafe is False, name


def test_g12_fit_print_every_term_within_3_percent(catalog: Catalog):
    """gemma-3-4b-it is not a catalog entry: its config.json (tests/fixtures/configs) stands in; the PR states the
    command (-c 32768, F16 file)."""
    config = json.loads((Path(__file__).parent / "fixtures" / "configs" / "gemma-3-4b-it.json").read_text())
    spec = spec_from_config(config, repo="google/gemma-3-4b-it")
    models = {**catalog.models, spec.slug: spec}
    report = check_log(G12.read_text(), SimpleNamespace(models=models, gpus=catalog.gpus),
                       {"model": spec.slug, "quantization": "f16", "n_ctx": 32768})
    assert report.request is not None and report.request["backend"] == "metal"
    terms = _terms(report)
    assert set(terms) == {"weights on GPU", "weights in host RAM", "KV cache", "compute buffer on GPU",
                          "compute buffer in host RAM"}
    for name, (measured, ours, unsafe) in terms.items():
        assert ours is not None and abs(ours - measured) <= 0.03 * measured and unsafe is False, name


def test_vram_check_reads_the_2026_log(tmp_path: Path):
    out = CliRunner().invoke(cli, ["check", str(G13), "--model", "gpt-oss-120b", "--json"], env={"COLUMNS": "200"})
    assert out.exit_code == 0
    report = json.loads(out.stdout)
    assert report["request"]["backend"] == "rocm" and not report["unsafe_terms"]
