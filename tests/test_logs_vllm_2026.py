"""vLLM 0.2x / 0.34 startup lines: parsed figure by figure (typed from the logs) and compared term by term.

Fixtures: tests/fixtures/logs/g02_*.log, g05_*.log and g10_*.log (field cases G02, G05, G10; sidecars name the
public source). The 0.30+ single-line KV size and 0.34's post-warmup lines have no public log here: their text is
vLLM 0.34.0's own format strings (kv_cache_utils.py:1157-1175, extensible_kv_cache.py:694 and :537) filled
with made-up numbers, and only the parsing is checked on them.
"""

from __future__ import annotations

from math import ceil
from pathlib import Path

import pytest

from app.catalog import Catalog
from app.estimator.kv_cache import KV_TYPES
from app.estimator.runtimes import vllm_kv
from app.logs import check_log, parse_log

FIXTURES = Path(__file__).parent / "fixtures" / "logs"
G02 = (FIXTURES / "g02_vllm0.21_qwen3_8b_a5000.log").read_text()
G05 = (FIXTURES / "g05_vllm0.2x_qwen3.8_27b_2x3090_ledger.log").read_text()
G10 = (FIXTURES / "g10_vllm0.11_glm41v_9b_thinking.log").read_text()
GiB = 1 << 30


def _printed(log, key: str) -> list[tuple[str | None, str, int]]:
    return [(f.device, f.printed, f.line) for f in log.all(key)]


def test_g02_lines_are_read():
    log = parse_log(G02)
    assert log.runtime == "vllm"
    assert _printed(log, "cuda_graph_estimate") == [(None, "0.52", 2)]
    assert _printed(log, "kv_available") == [(None, "6.37", 3)]
    assert _printed(log, "equivalent_utilization") == [(None, "0.9543", 4)]
    assert log.setting("gpu_memory_utilization") == 0.9764
    assert _printed(log, "kv_tokens") == [(None, "46,368", 5)]
    assert _printed(log, "max_concurrency") == [(None, "2.83", 6)]


def test_g05_ledger_is_read_term_by_term():
    log = parse_log(G05)
    assert _printed(log, "gpu_free_start") == [("TP0", "23.15", 1)]
    assert _printed(log, "gpu_total") == [("TP0", "23.56", 1)]
    assert log.setting("gpu_memory_utilization") == 0.92
    assert _printed(log, "budget") == [("TP0", "21.67", 1)]
    assert _printed(log, "consumed") == [("TP0", "15.25", 1)]
    assert _printed(log, "peak_activation_with_estimate") == [("TP0", "1.66", 1)]
    assert _printed(log, "cuda_graph_pool") == [("TP0", "0.14", 1), ("TP1", "0.14", 2)]
    assert _printed(log, "kv_in_use") == [("TP0", "4.76", 1)]
    assert _printed(log, "cuda_graph_estimated") == [("TP1", "0.2", 2)]
    assert "available KV memory" not in log.missing and "weights loaded" not in log.missing


def test_0_30_single_line_and_0_34_warmup_lines_are_read():
    text = ("GPU KV cache size: 173,024 tokens, Maximum concurrency for 32,768 tokens per request: 5.28x\n"
            "Memory after warmup: 3.10 GiB free, 0.50 GiB committed to the KV cache, 1.20 GiB kept for transient "
            "activations (1.20 GiB allocated at peak, 0.30 GiB of torch reservation growth); 10813 KV cache blocks "
            "(21.12 GiB) fit within the requested 23.64 GiB. Torch may reserve up to 2.40 GiB.\n"
            "Extended KV cache to 10813 blocks (21.12 GiB).\n")
    log = parse_log(text)
    assert _printed(log, "kv_tokens") == [(None, "173,024", 1)]
    assert _printed(log, "max_concurrency") == [(None, "5.28", 1)] and log.setting("concurrency_tokens") == 32768
    assert _printed(log, "transient_peak") == [(None, "1.20", 2)]
    assert _printed(log, "gpu_blocks") == [(None, "10813", 2)]
    assert _printed(log, "kv_measured") == [(None, "21.12", 2)] and _printed(log, "budget") == [(None, "23.64", 2)]
    assert _printed(log, "kv_extended") == [(None, "21.12", 3)]


def test_g02_compared_with_our_estimate_as_0_21(catalog: Catalog):
    """Version and GPU are not in the excerpt: the issue names vLLM 0.21.0 and an RTX A5000."""
    r = check_log(G02, catalog, {"model": "qwen3-8b", "vllm_version": "0.21.0", "gpu": "rtx-a5000"})
    assert r.estimate is not None and r.estimate.vllm.version == "0.21-0.26"
    terms = {t.term: t for t in r.terms}
    assert abs(terms["available KV cache memory"].error) <= 0.02
    assert abs(terms["GPU KV cache size"].error) <= 0.02
    assert abs(terms["maximum concurrency"].error) <= 0.02
    assert terms["equivalent gpu_memory_utilization"].estimated == pytest.approx(0.9543, abs=0.0002)
    assert terms["CUDA-graph estimate in the budget"].error == pytest.approx(0, abs=0.01)  # fitted on G02


def test_g05_total_picks_the_rtx_3090_as_cuda_reports_it(catalog: Catalog):
    """G05 prints 23.56 GiB: the RTX 3090 as CUDA sees it (gpus.json cuda_bytes from this very line)."""
    from app.logs.compare import _gpu_for

    assert _gpu_for(parse_log(G05), catalog.gpus) == "rtx-3090"


def test_g10_lines_are_read():
    log = parse_log(G10)
    assert _printed(log, "kv_available") == [(None, "16.23", 1)]
    assert _printed(log, "kv_tokens") == [(None, "425,424", 2)]
    assert _printed(log, "max_concurrency") == [(None, "6.49", 3)] and log.setting("concurrency_tokens") == 65536
    assert _printed(log, "cuda_graph") == [(None, "0.95", 4)]
    assert _printed(log, "gpu_blocks") == [(None, "26589", 5)]


def test_g10_glm_4_1v_blocks_tokens_and_concurrency_as_vllm_0_11_computes_them(catalog: Catalog):
    """G10 (https://github.com/zai-org/GLM-V/issues/204, vLLM 0.11.0, GLM-4.1V-9B-Thinking bf16, max_model_len
    65536): "Available KV cache memory: 16.23 GiB", "GPU KV cache size: 425,424 tokens", "Maximum concurrency
    for 65,536 tokens per request: 6.49x", "num_gpu_blocks is: 26589".

    vLLM 0.11.0's arithmetic (its wheel): page = 2 x block 16 x KV heads x head_size x dtype bytes
    (v1/kv_cache_interface.py:64-66), num_blocks = available // page // layers (v1/core/kv_cache_utils.py:824),
    tokens = num_blocks // groups x block (:1080), concurrency = num_blocks / cdiv(max_model_len usage, one
    block of every layer) (:780-797), printed "%.2f" (gpu_worker.py:298 for GiB, :1091). Config: 40 layers,
    2 KV heads, head_dim 128, bf16 (2 bytes): 40 x 2 x 2 x 128 x 2 = 40,960 bytes per token.

    The printed 16.23 GiB is rounded: budgets in [16.225, 16.235) GiB give 26,583 to 26,599 blocks, so the
    rounded figure alone does not pin the count. The printed block count does: every budget that gives 26,589
    blocks, [26,589, 26,590) x 655,360 bytes, prints as 16.23 GiB, and with it our plan gives the printed tokens
    and concurrency exactly."""
    log = parse_log(G10)
    spec = catalog.model("glm-4.1v-9b-thinking")
    layers = vllm_kv.layer_kv(spec.language_model, KV_TYPES["bf16"], tp=1)
    assert [x.kind for x in layers] == ["full"] * 40
    assert sum(x.bytes_per_token for x in layers) == 40 * 2 * 2 * 128 * 2 == 40_960
    block_bytes = 40 * (2 * 16 * 2 * 128 * 2)  # one block of every layer: 655,360
    printed_blocks = int(log.first("gpu_blocks").printed)
    max_model_len = log.setting("concurrency_tokens")

    def ours(budget: int) -> vllm_kv.KvPlan:
        return vllm_kv.plan_for(spec, vllm_version="0.11.0", max_model_len=max_model_len, kv_budget_bytes=budget,
                                max_num_batched_tokens=2048)

    low, high = ours(ceil(16.225 * GiB)), ours(ceil(16.235 * GiB) - 1)  # every budget printed as 16.23 GiB
    assert (low.num_blocks, high.num_blocks) == (26_583, 26_599)
    for budget in (printed_blocks * block_bytes, (printed_blocks + 1) * block_bytes - 1):
        assert f"{budget / GiB:.2f}" == log.first("kv_available").printed
        p = ours(budget)
        assert p.release == "0.11" and p.bytes_per_block == block_bytes and len(p.groups) == 1
        assert p.num_blocks == 26_589
        assert f"{p.tokens:,}" == log.first("kv_tokens").printed
        assert f"{p.max_concurrency:.2f}" == log.first("max_concurrency").printed
