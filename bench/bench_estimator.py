"""Estimates per second of the pure estimator, per runtime, beside a baseline measured in the same run
(validating the request model alone), because these machines are shared and noisy.

Each runtime's states cover its formats and its costly paths: transformers (a vision model, a hybrid, an MoE),
llama.cpp (full and partial offload, a hybrid, an MoE), vLLM (TP 1, TP 2, TP 2 x PP 2, a hybrid, an MoE in FP8);
every state names a GPU or none, so the per-GPU fit list over the catalog is part of each figure."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from app.catalog import load_catalog
from app.estimator import VramRequest, estimate
from bench import results_file

# The original 24 GLM-4V-9B states (figures before the llama.cpp and vLLM models are comparable with "glm-4v")
GLM_STATES = [dict(model="glm-4v-9b", quantization=q, context=c, images=i, gpu="rtx-4090")
              for q in ("bf16", "q4_k_m", "awq-int4", "fp8") for c in (1024, 8192, 131072) for i in (0, 1)]
STATES = {
    "glm-4v (24 states)": GLM_STATES,
    "transformers": [
        dict(model="glm-4v-9b", quantization="bf16", runtime="transformers", context=8192, images=1, gpu="rtx-4090"),
        dict(model="qwen3.5-27b", quantization="bf16", runtime="transformers", context=32768, gpu="h100-80gb"),
        dict(model="qwen3-30b-a3b", quantization="bf16", runtime="transformers", context=8192, batch=4),
    ],
    "llama.cpp": [
        dict(model="glm-4v-9b", quantization="q4_k_m", runtime="llama.cpp", context=8192, images=1, gpu="rtx-4090"),
        dict(model="glm-4v-9b", quantization="q4_k_m", runtime="llama.cpp", context=131072, n_gpu_layers=20),
        dict(model="qwen3.5-27b", quantization="q4_k_m", runtime="llama.cpp", context=32768, gpu="rtx-4090"),
        dict(model="qwen3-30b-a3b", quantization="q8_0", runtime="llama.cpp", context=8192, n_gpu_layers=30,
             n_parallel=4),
    ],
    "vllm": [
        dict(model="llama-3.1-8b", quantization="bf16", runtime="vllm", context=32768, gpu="rtx-4090"),
        dict(model="llama-3.1-8b", quantization="bf16", runtime="vllm", context=32768, gpu_count=2),
        dict(model="llama-3.1-70b", quantization="fp8", runtime="vllm", context=8192, gpu_count=4,
             pipeline_parallel_size=2, gpu="h100-80gb"),
        dict(model="qwen3.5-27b", quantization="bf16", runtime="vllm", context=32768, gpu_count=2, gpu="h100-80gb"),
        dict(model="qwen3-30b-a3b", quantization="fp8", runtime="vllm", context=8192),
    ],
}
TARGET_US = 50


def _rate(fn, n: int) -> float:
    t = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t) / n


def _group(catalog, states: list[dict], rounds: int, n: int) -> dict:
    pairs = [(catalog.model(s["model"]), VramRequest(**s)) for s in states]
    for spec, r in pairs:  # warm the per-spec caches, as a running server has them
        estimate(spec, r, catalog.gpus)
    it = iter(range(10**12))
    # the same states with a context no estimate has seen (+1 token each time): what the caches keyed by model,
    # format and layout give a request that nothing keyed by the request itself can answer
    fresh = iter(range(1, 10**12))
    new_pairs = [(spec, r.model_dump(exclude_unset=True)) for spec, r in pairs]
    new_reqs = [[] for _ in pairs]

    def one_estimate():
        spec, r = pairs[next(it) % len(pairs)]
        estimate(spec, r, catalog.gpus)

    def one_new_estimate():
        i = next(it) % len(pairs)
        estimate(new_pairs[i][0], new_reqs[i].pop(), catalog.gpus)

    def baseline():
        VramRequest(**states[next(it) % len(states)])

    est, new, base = [], [], []
    for _ in range(rounds):  # interleaved, so all see the same machine load
        est.append(_rate(one_estimate, n))
        for i, (_, data) in enumerate(new_pairs):  # built outside the timed loop
            new_reqs[i] = [VramRequest(**{**data, "context": data.get("context", 1024) + next(fresh)})
                           for _ in range(n // len(pairs) + 1)]
        new.append(_rate(one_new_estimate, n))
        base.append(_rate(baseline, n))
    return {"estimate_us_median": statistics.median(est) * 1e6, "estimate_us_best": min(est) * 1e6,
            "estimates_per_s": 1 / statistics.median(est),
            "new_context_us_median": statistics.median(new) * 1e6,
            "baseline_request_validation_us": statistics.median(base) * 1e6,
            # this machine's speed moves between runs; the ratio to the same run's baseline does not
            "estimate_over_baseline": statistics.median(est) / statistics.median(base)}


def run(rounds: int = 7, n: int = 500, groups: dict[str, list[dict]] | None = None) -> dict[str, dict]:
    catalog = load_catalog()
    return {name: _group(catalog, states, rounds, n) for name, states in (groups or STATES).items()}


def main(rounds: int = 7, n: int = 500, out: Path | None = None) -> dict[str, dict]:
    before = results_file.load_average()
    print(f"load average before: {before}")
    results = run(rounds, n)
    for name, r in results.items():
        print(f"estimate() {name}: median {r['estimate_us_median']:.1f} us (best {r['estimate_us_best']:.1f} us), "
              f"{r['estimates_per_s']:,.0f} estimates/s; a context never seen before "
              f"{r['new_context_us_median']:.1f} us; baseline VramRequest validation "
              f"{r['baseline_request_validation_us']:.1f} us ({r['estimate_over_baseline']:.1f}x); "
              f"target < {TARGET_US} us: "
              f"{'met' if r['estimate_us_median'] < TARGET_US else 'MISSED'}")
    print(f"load average after: {results_file.load_average()}")
    results_file.write("estimator", {"target_us": TARGET_US, "rounds": rounds, "n": n, "groups": results}, out, before)
    return results


if __name__ == "__main__":
    import argparse

    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("-n", type=int, default=500, help="estimates per round")
    p.add_argument("--out", type=Path, default=None, help="folder for the results file (default bench/results)")
    a = p.parse_args()
    main(a.rounds, a.n, a.out)
