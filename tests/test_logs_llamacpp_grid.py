"""The log parser on logs the real llama.cpp printed here (model_specs/llamacpp/logs, written by the
llama.cpp grid harness: one section per load, headed by the flags it was given)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from app.logs import check_log, parse_log

LOGS = Path(__file__).resolve().parent.parent / "model_specs" / "llamacpp" / "logs"
FILES = sorted([*LOGS.glob("*.log"), *LOGS.glob("*.log.gz")]) if LOGS.is_dir() else []
FIXTURE = Path(__file__).parent / "fixtures" / "logs" / "llamacpp_cpu_build_llama31_8b_q4km_dryrun.log"
grid = pytest.mark.skipif(not FILES, reason="no llama.cpp grid logs committed")


def _text(path: Path) -> str:
    return gzip.decompress(path.read_bytes()).decode() if path.suffix == ".gz" else path.read_text()


def _sections(path: Path) -> list[tuple[dict, str]]:
    """(flags, log body) per load; flags gain the model slug and file type the header names."""
    out = []
    for chunk in _text(path).split("===== ")[1:]:
        header, _, body = chunk.partition("\n")
        slug, quant = header.split()[:2]
        out.append(({**json.loads(header[header.index("{"):]), "slug": slug, "quant": quant}, body))
    return out


def test_cpu_build_dry_run_printed_numbers(catalog):
    """Typed from the fixture's text: lines 74, 93, 95 and 108."""
    log = parse_log(FIXTURE.read_text())
    assert [(f.device, f.printed, f.line) for f in log.all("compute_buffer")] == [("CPU", "266.50", 108)]
    assert [(f.printed, f.line) for f in log.all("kv_total")] == [("256.00", 95)]
    assert [(f.device, f.printed, f.line) for f in log.all("output_buffer")] == [("CPU", "0.49", 93)]
    assert log.setting("flash_attn") == "disabled" and log.setting("n_ctx") == 2048
    report = check_log(FIXTURE.read_text(), catalog)
    assert report.model == "llama-3.1-8b" and "-ngl 0" in report.command  # general.name Llama-3.1-8B, CPU only


@grid
@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_settings_read_back_as_given(path):
    """The harness's flags (section header) are what the parser reads from llama.cpp's own lines."""
    for flags, body in _sections(path):
        log = parse_log(body)
        assert log.setting("n_ubatch") == min(flags["n_ubatch"], flags["n_batch"]), flags
        assert (log.setting("flash_attn") == "enabled") == (flags["flash_attn"] == "on"), flags
        assert log.setting("type_k") == flags["cache_type_k"], flags


@grid
@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_kv_and_output_within_printed_rounding(path, catalog):
    """KV cache and output buffer are exact arithmetic: our estimate within the printed 0.005 MiB."""
    compared = 0
    for flags, body in _sections(path)[:4]:
        # later sections reuse the loaded model and print no metadata: name it as the header does
        named = {"model": flags["slug"], "quantization": flags["quant"]} if flags["slug"] in catalog.models else {}
        report = check_log(body, catalog, named)
        if not named and report.estimate is None:
            continue  # a grid-only model (not in the catalog) in a section without its metadata
        terms = {t.term: t for t in report.terms}
        assert report.estimate is not None, (flags, report.warnings)
        compared += 1
        for term in ("KV cache", "output buffer"):
            t = terms[term]
            assert abs(t.estimated - t.measured) <= t.tolerance, (path.stem, flags, term, t)
    assert compared, path.stem
