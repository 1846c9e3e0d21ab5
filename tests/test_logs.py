"""Log parsers on real public logs: every expected value below is typed from the log text itself.

Each fixture in tests/fixtures/logs/ has a .source.json sidecar naming its public URL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.logs import check_log, parse_log
from app.logs.model import figure
from app.logs.scrub import scrub

FIXTURES = Path(__file__).parent / "fixtures" / "logs"
MiB, GiB = 1 << 20, 1 << 30


def _log(name: str):
    return parse_log((FIXTURES / f"{name}.log").read_text())


def _printed(log, key: str) -> list[tuple[str | None, str, int]]:
    return [(f.device, f.printed, f.line) for f in log.all(key)]


def test_every_fixture_names_its_public_source():
    logs = sorted(FIXTURES.glob("*.log"))
    assert len(logs) >= 15
    for path in logs:
        side = json.loads(path.with_suffix(".source.json").read_text())
        assert side["source"].startswith(("https://github.com/", "this project: ")), path.name


# (fixture, key, [(device, printed, line)]) typed from the logs
L4 = "l4_ipex_sycl_deepseek_r1_qwen7b_q4km"
BUFFERS = [
    ("l1_ollama_0.5.4_llama31_8b_q4km", "model_buffer", [("CPU", "281.81", 116), ("CUDA0", "4403.49", 117)]),
    ("l1_ollama_0.5.4_llama31_8b_q4km", "kv_buffer", [("CUDA0", "1024.00", 127)]),
    ("l1_ollama_0.5.4_llama31_8b_q4km", "compute_buffer", [("CUDA0", "560.00", 130), ("CUDA_Host", "24.01", 131)]),
    ("l1_ollama_0.5.4_llama31_8b_q4km", "output_buffer", [("CUDA_Host", "2.02", 129)]),
    ("l1_ollama_0.5.4_llama31_8b_q4km", "lora_buffer", [("CUDA0", "160.00", 135)]),
    ("l3_llamacpp_b2961_mistral7b_q2k_32k", "model_buffer", [("CPU", "41.02", 4), ("CUDA0", "2898.55", 5)]),
    ("l3_llamacpp_b2961_mistral7b_q2k_32k", "kv_total", [(None, "4000.00", 17)]),
    ("l3_llamacpp_b2961_mistral7b_q2k_32k", "compute_buffer", [("CUDA0", "2094.50", 19), ("CUDA_Host", "70.51", 20)]),
    ("l3_llamacpp_b2961_mistral7b_q2k_32k", "output_buffer", [("CUDA_Host", "0.12", 18)]),
    (L4, "model_buffer", [("SYCL0", "4168.09", 107), ("CPU_Mapped", "292.36", 108)]),
    (L4, "kv_total", [(None, "138.25", 131)]),
    (L4, "compute_buffer", [("SYCL0", "1501.00", 133), ("SYCL_Host", "58.97", 134)]),
    ("new_llamacpp_b7406_kv_q8_0", "kv_buffer", [("CPU", "881.34", 11), ("CUDA0", "293.78", 13)]),
    ("new_llamacpp_b7406_kv_q8_0", "kv_total", [(None, "1175.12", 15)]),
    ("new_llamacpp_b7406_kv_q8_0", "kv_k", [(None, "587.56", 15)]),
    ("old_llamacpp_2024_trilm_cuda", "model_buffer", [("CPU", "297.00", 11), ("CUDA0", "7317.71", 12)]),
    ("old_llamacpp_2024_trilm_cuda", "compute_buffer", [("CUDA0", "105.00", 23)]),
    ("ollama_journal_2025_command7b_fp16", "model_buffer", [("CUDA0", "13312.50", 1)]),
    ("fit_llamacpp_b7003_deepseek_v31", "fit_used", [("CUDA0", "201672", 8), ("CUDA1", "208920", 9)]),
    ("fit_llamacpp_b7003_deepseek_v31", "fit_projected", [(None, "410593", 10)]),
    ("fit_print_llamacpp_pr22171_gemma3_4b", "fit_model", [("MTL0", "7401", 2), ("host", "1280", 3)]),
    ("fit_print_llamacpp_pr22171_gemma3_4b", "fit_compute", [("MTL0", "517", 2), ("host", "154", 3)]),
    ("llamacpp_memory_breakdown_pr15860", "mb_model", [("CUDA0", "13169", 2), ("CUDA1", "13169", 3),
                                                       ("CUDA2", "13169", 4), ("CPU", "0", 5)]),
    ("llamacpp_memory_breakdown_pr15860", "mb_compute", [("CUDA0", "985", 2), ("CUDA1", "548", 3),
                                                         ("CUDA2", "548", 4), ("CPU", "15", 5)]),
    ("llamacpp_memory_breakdown_pr15860", "mb_unaccounted", [("CUDA0", "451", 2), ("CUDA1", "456", 3),
                                                             ("CUDA2", "456", 4)]),
    ("ollama_engine_2025_08_kv_compute", "kv_buffer", [("CUDA0", "936.0", 1)]),
    ("ollama_engine_2025_08_kv_compute", "compute_buffer", [("CUDA0", "98.0", 2), ("CPU", "8.0", 3)]),
    ("ollama_engine_2025_08_kv_compute", "ollama.total", [(None, "5.4", 4)]),
    ("ollama_engine_2025_07_mistral3_q8", "model_buffer", [("CUDA0", "11.5", 5), ("CUDA1", "11.9", 6),
                                                           ("CPU", "680.0", 7)]),
    ("l1_ollama_0.5.4_llama31_8b_q4km", "ollama.graph.full", [(None, "560.0", 11)]),
    ("l1_ollama_0.5.4_llama31_8b_q4km", "ollama.required.full", [(None, "6.5", 11)]),
    ("vllm_v0_0.6.5_profiling_table_llama3_8b", "weights_profiled", [(None, "14.96", 6)]),
    ("vllm_v0_0.6.5_profiling_table_llama3_8b", "activation_peak", [(None, "1.26", 8)]),
    ("vllm_v0_0.6.5_profiling_table_llama3_8b", "kv_available", [(None, "53.29", 9)]),
    ("vllm_v0_0.6.5_profiling_table_llama3_8b", "gpu_total", [(None, "79.22", 3)]),
    ("vllm_v0_0.6.4_bamba_tp2", "kv_available", [("worker 1587462", "34.96", 3), (None, "34.78", 4)]),
    ("vllm_v0_0.6.4_bamba_tp2", "peak_torch", [("worker 1587462", "34.32", 3), (None, "34.50", 4)]),
    ("vllm_v0_0.6.4_bamba_tp2", "gpu_blocks", [(None, "189945", 5)]),
    ("vllm_v0_0.6.4_bamba_tp2", "max_concurrency", [(None, "2967.89", 6)]),
    ("vllm_v0_0.7_cuda_blocks_graphs", "gpu_blocks", [(None, "36184", 4)]),
    ("vllm_v0_0.7_cuda_blocks_graphs", "cuda_graph", [(None, "0.13", 7)]),
    ("vllm_v0_0.7_cuda_blocks_graphs", "budget", [(None, "63.35", 2)]),
    ("vllm_v0_0.8_model_loading_gb_tp4", "weights", [(None, "15.4137", 4), ("worker 1005426", "15.4137", 5),
                                                     ("worker 1005428", "15.4137", 6)]),
    ("v1_vllm0.19_llama31_8b_bf16_8192", "weights", [(None, "14.99", 22)]),
    ("v1_vllm0.19_llama31_8b_bf16_8192", "activation_peak", [(None, "1.89", 35)]),
    ("v1_vllm0.19_llama31_8b_bf16_8192", "non_torch", [(None, "0.25", 35)]),
    ("v1_vllm0.19_llama31_8b_bf16_8192", "kv_available", [(None, "58.11", 36)]),
    ("v1_vllm0.19_llama31_8b_bf16_8192", "kv_tokens", [(None, "476,016", 38)]),
    ("v1_vllm0.19_llama31_8b_bf16_8192", "cuda_graph_pool", [(None, "0.91", 43)]),
    ("v1_vllm0.19_llama31_8b_bf16_8192", "cuda_graph_estimated", [(None, "0.84", 43)]),
    ("v1_vllm0.19_llama31_8b_fp32", "weights", [(None, "29.98", 22)]),
    ("v1_vllm0.19_llama31_8b_fp32", "kv_tokens", [(None, "175,296", 38)]),
    ("v1_vllm0.19_llama31_8b_kvfp8", "kv_tokens", [(None, "952,032", 40)]),
    ("v1_vllm0.19_llama31_8b_qfp8", "weights", [(None, "8.49", 24)]),
    ("v1_vllm0.19_llama31_8b_qfp8", "kv_available", [(None, "64.61", 38)]),
    ("v1_vllm0.19_llama31_8b_tp2", "weights", [("TP0", "7.51", 29)]),
    ("v1_vllm0.19_llama31_8b_tp2", "kv_tokens", [(None, "1,044,688", 56)]),
    ("v1_vllm0.19_llama31_8b_tp4", "kv_available", [("TP0", "67.44", 66)]),
    ("v2_vllm0.19_llama31_8b_w4a16", "weights", [(None, "5.38", 25)]),
    ("v2_vllm0.19_llama31_8b_w4a16", "kv_tokens", [(None, "554,704", 41)]),
    ("v2_vllm0.19_llama31_8b_w8a8", "kv_tokens", [(None, "529,200", 40)]),
    ("v4_vllm0.7.3_v0_qwen25_7b_bnb_rtx4060", "weights", [(None, "5.2032", 1)]),
    ("v4_vllm0.7.3_v0_qwen25_7b_bnb_rtx4060", "kv_available", [(None, "-1.05", 4)]),
    ("v4_vllm0.7.3_v0_qwen25_7b_bnb_rtx4060", "activation_peak", [(None, "1.42", 4)]),
    ("v4_vllm0.7.3_v0_qwen25_7b_bnb_rtx4060", "gpu_blocks", [(None, "0", 5)]),
]


@pytest.mark.parametrize(("name", "key", "expected"), BUFFERS, ids=[f"{n}-{k}" for n, k, _ in BUFFERS])
def test_printed_figures_recovered_exactly(name, key, expected):
    assert _printed(_log(name), key) == expected


def test_ollama_engine_log_scrubbed(client):
    text = (FIXTURES / "ollama_engine_2025_08_kv_compute.log").read_text()
    r = client.post("/api/logs", content=text, headers={"content-type": "text/plain"})
    assert r.status_code == 200
    assert "192.168.1.17" not in r.text and "IRONSOFTWARE" not in r.text and "ksh" not in r.text


def test_tp4_every_rank_kept():
    log = _log("v2_vllm0.19_llama33_70b_fp8dyn_tp4")
    assert [f.printed for f in log.all("kv_available")][:1] == ["54.09"]
    assert [f.printed for f in log.all("kv_tokens")] == ["708,992"]
    assert log.setting("tensor_parallel_size") == 4


SETTINGS = [
    ("l1_ollama_0.5.4_llama31_8b_q4km", {"n_ctx": 8192, "n_seq_max": 4, "n_ctx_per_seq": 2048, "n_batch": 2048,
                                         "n_ubatch": 512, "flash_attn": 0, "type_k": "f16", "n_gpu_layers": 33,
                                         "meta.n_layer": 32, "meta.n_head": 32, "meta.n_head_kv": 8,
                                         "meta.n_embd": 4096, "meta.n_vocab": 128256, "meta.arch": "llama",
                                         "meta.model ftype": "Q4_K - Medium", "gguf.general.file_type": 15}),
    ("l3_llamacpp_b2961_mistral7b_q2k_32k", {"n_ctx": 32000, "n_batch": 1024, "n_ubatch": 512, "flash_attn": 0}),
    ("l4_ipex_sycl_deepseek_r1_qwen7b_q4km", {"n_ctx": 2528, "n_batch": 2528, "n_ubatch": 2528, "n_layer_total": 29,
                                              "meta.arch": "qwen2", "meta.n_vocab": 152064, "meta.n_ff": 18944}),
    ("new_llamacpp_b7406_kv_q8_0", {"n_ctx": 20224, "flash_attn": "enabled", "kv_unified": "true",
                                    "type_k": "q8_0", "kv_cells": 20224, "kv_layers": 28}),
    ("v1_vllm0.19_llama31_8b_bf16_8192", {"version": "0.19.0", "model": "meta-llama/Llama-3.1-8B-Instruct",
                                          "max_model_len": 8192, "gpu_memory_utilization": 0.95, "dtype": "bfloat16",
                                          "max_num_batched_tokens": 8192, "engine": "V1"}),
    ("v1_vllm0.19_llama31_8b_kvfp8", {"kv_cache_dtype": "fp8"}),
    ("v2_vllm0.19_llama31_8b_w4a16", {"quantization": "gptq_marlin", "dtype": "float16"}),
    ("v4_vllm0.7.3_v0_qwen25_7b_bnb_rtx4060", {"gpu_memory_utilization": 0.7, "concurrency_tokens": 4096}),
]


@pytest.mark.parametrize(("name", "expected"), SETTINGS, ids=[n for n, _ in SETTINGS])
def test_settings_recovered(name, expected):
    log = _log(name)
    assert {k: log.setting(k) for k in expected} == expected


def test_runtime_and_version():
    assert (_log("v1_vllm0.19_llama31_8b_bf16_8192").runtime, _log("v1_vllm0.19_llama31_8b_bf16_8192").version) == \
        ("vllm", "0.19.0")
    assert _log("fit_llamacpp_b7003_deepseek_v31").version == "b7003"
    assert _log("l3_llamacpp_b2961_mistral7b_q2k_32k").runtime == "llama.cpp"


def test_bytes_exact_to_printed_precision():
    f = figure("kv", "4403.49", "MiB", 1)
    assert f.bytes == round(440349 * MiB / 100) and f.rounding_bytes == round(MiB / 200)
    g = figure("w", "14.99", "GiB", 1)
    assert g.bytes == round(1499 * GiB / 100) and g.rounding_bytes == round(GiB / 200)
    assert figure("w", "5.2032", "GB", 1).bytes == round(52032 * GiB / 10000)  # vLLM V0 "GB" is GiB


def test_unknown_and_partial_logs_answer_what_they_can():
    unknown = parse_log("hello\nworld\n")
    assert unknown.runtime is None and unknown.missing
    partial = parse_log("llama_new_context_with_model: n_ctx      = 4096\n")
    assert partial.runtime == "llama.cpp" and partial.setting("n_ctx") == 4096
    assert "model buffers" in partial.missing and "compute buffers" in partial.missing


def test_oversized_log_refused():
    with pytest.raises(ValueError):
        parse_log("x" * (2 * MiB + 1))


def test_scrub_removes_paths_hosts_and_addresses():
    raw = ("Jan 17 16:39:28 quorra ollama[1]: loaded from /home/alice/models/m.gguf via tcp://10.128.4.185:60191 "
           "as alice@gpu-box ~alice C:\\Users\\bob\\m.gguf")
    from app.logs.scrub import strip_prefix
    out = scrub(strip_prefix(raw))
    for secret in ("quorra", "alice", "10.128.4.185", "bob", "gpu-box", "/home"):
        assert secret not in out, (secret, out)
    assert "m.gguf" in out


def test_check_log_l1_matches_printed_weights_and_kv(catalog):
    """L1: weights and KV are exact arithmetic, so our figures fall within the printed rounding."""
    report = check_log((FIXTURES / "l1_ollama_0.5.4_llama31_8b_q4km.log").read_text(), catalog)
    terms = {t.term: t for t in report.terms}
    for term in ("weights on GPU", "weights in host RAM", "KV cache"):
        t = terms[term]
        assert abs(t.estimated - t.measured) <= t.tolerance, (term, t)
    assert report.command.startswith("llama-server ")


def test_check_log_v1_compares_every_vllm_term(catalog):
    report = check_log((FIXTURES / "v1_vllm0.19_llama31_8b_bf16_8192.log").read_text(), catalog)
    terms = {t.term: t for t in report.terms}
    assert terms["weights per GPU"].measured == round(1499 * GiB / 100)
    assert terms["GPU KV cache size"].measured == 476016
    assert report.command.startswith("vllm serve ") and "--max-model-len 8192" in report.command
    assert report.request["gpu"] == "h100-80gb" and report.request["gpu_memory_utilization"] == 0.95


def test_other_version_is_compared_with_a_warning(catalog):
    text = (FIXTURES / "v1_vllm0.19_llama31_8b_bf16_8192.log").read_text().replace("0.19.0", "0.5.0")
    report = check_log(text, catalog)
    assert report.terms and any("0.5.0" in w for w in report.warnings)


def test_log_parsing_is_web_free():
    import subprocess
    import sys
    code = ("import sys, app.logs; "
            "print(any(m.split('.')[0] in ('fastapi', 'starlette', 'jinja2') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parent.parent)
    assert out.stdout.strip() == "False"


def _terms(name: str, catalog, overrides=None):
    report = check_log((FIXTURES / f"{name}.log").read_text(), catalog, overrides)
    return report, {t.term: t for t in report.terms}


# field cases: (fixture, overrides, {term: printed value in its unit}) typed from the logs
FIELD_CASES = [
    ("l1_ollama_0.5.4_llama31_8b_q4km", None, {"weights on GPU": 440349 * MiB // 100, "KV cache": 1024 * MiB,
                                               "compute buffer on GPU": 560 * MiB}),
    (L4, None, {"weights on GPU": round(416809 * MiB / 100), "weights in host RAM": round(29236 * MiB / 100),
                "compute buffer on GPU": 1501 * MiB}),
    ("v1_vllm0.19_llama31_8b_bf16_8192", None, {"weights per GPU": round(1499 * GiB / 100),
                                                "GPU KV cache size": 476016, "maximum concurrency": 58.11}),
    ("v1_vllm0.19_llama31_8b_tp4", None, {"weights per GPU": round(377 * GiB / 100), "GPU KV cache size": 2209792}),
    ("v2_vllm0.19_llama31_8b_w4a16", None, {"weights per GPU": round(538 * GiB / 100), "GPU KV cache size": 554704}),
    ("v2_vllm0.19_llama33_70b_fp8dyn_tp2", {"model": "llama-3.1-70b"},  # Llama 3.3 70B: the 3.1 70B architecture
     {"weights per GPU": round(3388 * GiB / 100), "GPU KV cache size": 244304}),
    ("v4_vllm0.7.3_v0_qwen25_7b_bnb_rtx4060",  # the excerpt does not print the release; the issue names 0.7.3
     {"model": "qwen2.5-7b-instruct", "quantization": "bnb-nf4-dq", "vllm_version": "0.7.3"},
     {"weights per GPU": round(52032 * GiB / 10000), "available KV cache memory": round(-105 * GiB / 100)}),
]


@pytest.mark.parametrize(("name", "overrides", "printed"), FIELD_CASES, ids=[c[0] for c in FIELD_CASES])
def test_field_case_compared_term_by_term(name, overrides, printed, catalog):
    report, terms = _terms(name, catalog, overrides)
    assert report.estimate is not None, report.warnings
    for term, value in printed.items():
        assert float(terms[term].measured) == pytest.approx(value, abs=1), (term, terms[term].measured, value)
        assert terms[term].estimated is not None, term


def test_exact_terms_within_printed_rounding(catalog):
    """Weights and KV cache are exact arithmetic: within the rounding of the printed MiB/GiB."""
    for name, exact in (("l1_ollama_0.5.4_llama31_8b_q4km", ("weights on GPU", "weights in host RAM", "KV cache",
                                                              "output buffer")),
                        (L4, ("weights on GPU", "weights in host RAM"))):
        _, terms = _terms(name, catalog)
        for term in exact:
            t = terms[term]
            assert abs(t.estimated - t.measured) <= t.tolerance, (name, term, t)


def test_ollama_runner_asks_for_embeddings(catalog):
    """Ollama's llama.cpp runner creates its context with embeddings on (llama/llama.go NewContextParams): the log's
    2.02 MiB output buffer is 4 sequences of logits plus n_embd floats, not the 1.96 MiB of logits alone."""
    report, terms = _terms("l1_ollama_0.5.4_llama31_8b_q4km", catalog)
    assert report.request["embeddings"] is True
    assert terms["output buffer"].printed.startswith("CUDA_Host 2.02 MiB")
    assert terms["output buffer"].under_estimate is False
    plain = check_log((FIXTURES / "llamacpp_cpu_build_llama31_8b_q4km_dryrun.log").read_text(), catalog)
    assert not plain.request.get("embeddings")


def test_v4_does_not_fit_on_both_sides(catalog):
    _, terms = _terms("v4_vllm0.7.3_v0_qwen25_7b_bnb_rtx4060", catalog,
                      {"model": "qwen2.5-7b-instruct", "quantization": "bnb-nf4-dq", "vllm_version": "0.7.3"})
    kv = terms["available KV cache memory"]
    assert kv.measured < 0 and kv.estimated < 0


def test_model_found_by_name_among_same_architectures(catalog):
    report, _ = _terms("l1_ollama_0.5.4_llama31_8b_q4km", catalog)
    assert report.model == "llama-3.1-8b-instruct"  # general.name "Meta Llama 3.1 8B Instruct"


def test_command_serves_the_logged_checkpoint(catalog):
    report, _ = _terms("v2_vllm0.19_llama31_8b_w4a16", catalog)
    assert report.command.startswith("vllm serve RedHatAI/Meta-Llama-3.1-8B-Instruct-quantized.w4a16 ")
    assert "--quantization" not in report.command  # the checkpoint's config names it


def test_runtime_own_estimate_shown_beside(catalog):
    _, terms = _terms("l1_ollama_0.5.4_llama31_8b_q4km", catalog)
    assert terms["compute buffer on GPU"].runtime_estimate == "560.0 MiB (line 11)"  # Ollama's memory.graph.full
    _, terms = _terms("v1_vllm0.19_llama31_8b_bf16_8192", catalog)
    assert terms["CUDA graph pool"].runtime_estimate == "0.84 GiB (line 43)"  # vLLM's estimated pool


def test_capacity_terms_unsafe_when_over(catalog):
    """Over-estimating KV capacity is the unsafe side; under-estimating memory used is."""
    report, terms = _terms("v1_vllm0.19_llama31_8b_bf16_8192", catalog)
    for t in report.terms:
        if t.unsafe is not None:
            over, under = t.estimated > t.measured + t.tolerance, t.estimated < t.measured - t.tolerance
            assert t.unsafe == (over if t.capacity else under), t
    assert terms["GPU KV cache size"].capacity and not terms["weights per GPU"].capacity
