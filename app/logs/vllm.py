"""vLLM startup logs, V0 engine (<= 0.10) and V1 engine (0.8+).

Line formats follow vLLM's own log calls: vllm/worker/worker.py determine_num_available_blocks (V0:
"model weights take X GiB; non_torch_memory takes ...; PyTorch activation peak memory takes ...; the rest
of the memory reserved for KV Cache is ..."), vllm/worker/model_runner.py ("Loading model weights took X
GB", GB meaning 2^30 bytes), vllm/v1/worker/gpu_model_runner.py ("Model loading took X GiB"),
vllm/v1/worker/gpu_worker.py ("Available KV cache memory", "torch peak memory increase"),
vllm/v1/core/kv_cache_utils.py ("GPU KV cache size", "Maximum concurrency"),
vllm/executor/executor_base.py ("# GPU blocks" / "# cuda blocks").
"""

from __future__ import annotations

import ast
import re

from app.logs.model import ParsedLog
from app.logs.rules import Line, Rule, add, lines, num, put, rule, run

# "(EngineCore pid=242) ", "(Worker_TP1 pid=445) ", "(APIServer pid=1) ", "[rank0]: ", "vllm-1  | "
# (quoted excerpts sometimes drop the pid: "(Worker_TP0) ")
_TAG = re.compile(r"^(?:\S+\s+\| )?\((\w+?)(?:_(TP\d+|PP\d+|DP\d+))?(?: pid=(\d+))?\) |^\[rank(\d+)\]: ")
_ARGS = ("model", "max_model_len", "gpu_memory_utilization", "tensor_parallel_size", "pipeline_parallel_size",
         "dtype", "quantization", "kv_cache_dtype", "enforce_eager", "max_num_seqs", "max_num_batched_tokens",
         "block_size", "enable_prefix_caching")
_CONFIG = {"model": "model", "dtype": "dtype", "max_seq_len": "max_model_len", "quantization": "quantization",
           "tensor_parallel_size": "tensor_parallel_size", "pipeline_parallel_size": "pipeline_parallel_size",
           "kv_cache_dtype": "kv_cache_dtype", "enforce_eager": "enforce_eager"}
_GIB = r"(-?[\d.]++) ?(GiB|GB)"
# Linear in the line: a key starts at a word boundary (no retry from inside a word), repeats are possessive
# where what follows cannot be in them (tests/test_hostile_logs.py times each rule on adversarial lines).
_KEY_VALUE = re.compile(r"\b(\w++)=('[^']*+'|[^,\s]++)")
_KEY_GIB = re.compile(r"\b(\w++)=(-?[\d.]++)(GiB)")
_UTIL = re.compile(r"gpu_memory_utilization=([\d.]++)$")


def _value(v: object) -> str | int | float | bool:
    return v if isinstance(v, str | int | float | bool) else str(v)


@rule(r"(?:version |engine \(v|LLM engine \(v|server version )(\d+\.\d+\.\d+[\w.+]*)")
def _version(m: re.Match[str], ln: Line, out: ParsedLog) -> None:
    put(out, "version", m[1], ln.no)
    put(out, "engine", "V1" if "V1 LLM engine" in ln.text else "V0", ln.no) if "engine (v" in ln.text else None


@rule(r"non-default args: (\{.*+)")
def _args(m: re.Match[str], ln: Line, out: ParsedLog) -> None:
    text = m[1][:m[1].rfind("}") + 1]  # to the last "}" (a regex ".*\}" backtracks once per later start)
    try:
        args = ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):  # 1+1+...: a deep tree
        out.notes.append(f"line {ln.no}: non-default args not readable")
        return
    if not isinstance(args, dict):
        return
    for k in _ARGS:
        if k in args:
            put(out, k, _value(args[k]), ln.no)


@rule(r"with config: (.*)")
def _config(m: re.Match[str], ln: Line, out: ParsedLog) -> None:
    for k, v in _KEY_VALUE.findall(m[1]):
        if k in _CONFIG:
            v = v.strip("'").removeprefix("torch.")
            if v == "None":
                continue
            put(out, _CONFIG[k], num(v) if re.fullmatch(r"\d{1,30}", v) else {"True": True, "False": False}.get(v, v),
                ln.no)


@rule(r"Using max model len (\d++)")
def _max_len(m: re.Match[str], ln: Line, out: ParsedLog) -> None:
    put(out, "max_model_len", num(m[1]), ln.no)


@rule(r"max_num_batched_tokens=(\d++)")
def _batched(m: re.Match[str], ln: Line, out: ParsedLog) -> None:
    put(out, "max_num_batched_tokens", num(m[1]), ln.no)


@rule(r"(?:Model loading took|Loading model weights took) " + _GIB)
def _weights(m: re.Match[str], ln: Line, out: ParsedLog) -> None:
    add(out, "weights", m[1], m[2], ln)


@rule(r"Total non KV cache memory: " + _GIB + r"; torch peak memory increase: " + _GIB +
      r"; non-torch forward increase memory: " + _GIB + r"; weights memory: " + _GIB)
def _profile_v1(m: re.Match[str], ln: Line, out: ParsedLog) -> None:
    for i, key in enumerate(("non_kv", "activation_peak", "non_torch", "weights_profiled")):
        add(out, key, m[2 * i + 1], m[2 * i + 2], ln)


@rule(r"model weights take " + _GIB + r"; non_torch_memory takes " + _GIB +
      r"; PyTorch activation peak memory takes " + _GIB + r"; the rest of the memory reserved for KV Cache is " + _GIB)
def _profile_v0(m: re.Match[str], ln: Line, out: ParsedLog) -> None:
    for i, key in enumerate(("weights_profiled", "non_torch", "activation_peak", "kv_available")):
        add(out, key, m[2 * i + 1], m[2 * i + 2], ln)


@rule(r"total_gpu_memory \(" + _GIB + r"\) x gpu_memory_utilization \(([\d.]++)\) = " + _GIB)
def _budget_v0(m: re.Match[str], ln: Line, out: ParsedLog) -> None:
    add(out, "gpu_total", m[1], m[2], ln)
    put(out, "gpu_memory_utilization", float(m[3]), ln.no)
    add(out, "budget", m[4], m[5], ln)


@rule(r"total_memory=" + _GIB)
def _total_v1(m: re.Match[str], ln: Line, out: ParsedLog) -> None:
    add(out, "gpu_total", m[1], m[2], ln)


@rule(r"Available KV cache memory: " + _GIB)
def _kv_available(m: re.Match[str], ln: Line, out: ParsedLog) -> None:
    add(out, "kv_available", m[1], m[2], ln)


@rule(r"(?:GPU|CPU|XPU)(?: \+ host)? KV cache size: ([\d,]++) tokens")
def _kv_tokens(m: re.Match[str], ln: Line, out: ParsedLog) -> None:
    add(out, "kv_tokens", m[1], "tokens", ln)


@rule(r"Maximum concurrency for ([\d,]++) tokens per request: ([\d.]++)x")
def _concurrency(m: re.Match[str], ln: Line, out: ParsedLog) -> None:
    put(out, "concurrency_tokens", num(m[1]), ln.no)
    add(out, "max_concurrency", m[2], "x", ln)


@rule(r"# (?:GPU|cuda) blocks: (\d++), # CPU blocks: (\d++)")
def _blocks(m: re.Match[str], ln: Line, out: ParsedLog) -> None:
    add(out, "gpu_blocks", m[1], "blocks", ln)
    add(out, "cpu_blocks", m[2], "blocks", ln)


@rule(r"num_gpu_blocks is: (\d++)")  # v1 "vllm cache_config_info with initialization after num_gpu_blocks is: %d"
def _num_gpu_blocks(m: re.Match[str], ln: Line, out: ParsedLog) -> None:  # (vllm 0.11.0 v1/metrics/loggers.py:147)
    add(out, "gpu_blocks", m[1], "blocks", ln)


@rule(r"Graph capturing finished in \d++ secs?, took " + _GIB)
def _graphs(m: re.Match[str], ln: Line, out: ParsedLog) -> None:
    add(out, "cuda_graph", m[1], m[2], ln)


@rule(r"CUDA graph pool memory: " + _GIB + r" \(actual\), " + _GIB + r" \(estimated\)")
def _graph_pool(m: re.Match[str], ln: Line, out: ParsedLog) -> None:
    add(out, "cuda_graph_pool", m[1], m[2], ln)
    add(out, "cuda_graph_estimated", m[3], m[4], ln)


# --- vLLM 0.20+ (gpu_worker.py, gpu_model_runner.py / v1/worker/gpu/cudagraph_utils.py, extensible_kv_cache.py) ---
@rule(r"Estimated CUDA graph memory: ([\d.]+) ?(GiB) total")
def _graph_estimate(m: re.Match[str], ln: Line, out: ParsedLog) -> None:
    add(out, "cuda_graph_estimate", m[1], m[2], ln)  # inside the budget only with the switch on (0.20+ default)


# "The current --gpu-memory-utilization=0.9764 is equivalent to --gpu-memory-utilization=0.9543 without CUDA
# graph memory profiling" (0.21+ gpu_worker.py, when the estimate is in the budget)
@rule(r"current --gpu-memory-utilization=([\d.]+) is equivalent to --gpu-memory-utilization=([\d.]+) without")
def _equivalent(m: re.Match[str], ln: Line, out: ParsedLog) -> None:
    put(out, "gpu_memory_utilization", float(m[1]), ln.no)
    add(out, "equivalent_utilization", m[2], "x", ln)


# The ledger (0.2x, INFO since 2026-07): "Free memory on device (23.15/23.56 GiB) on startup. Desired GPU memory
# utilization is (0.92, 21.67 GiB). Actual usage is 15.25 GiB for consumed memory (weights + non-torch), 1.66 GiB
# for peak activation, and 0.14 GiB for CUDAGraph memory. ... Current kv cache memory in use is 4.76 GiB."
@rule(r"Free memory on device(?: \S+)? \(([\d.]+)/([\d.]+) (GiB)\) on startup\. Desired GPU memory utilization is "
      r"\(([\d.]+), ([\d.]+) GiB\)\. Actual usage is ([\d.]+) GiB for consumed memory \(weights \+ non-torch\), "
      r"([\d.]+) GiB for peak activation, and ([\d.]+) GiB for CUDAGraph memory")
def _ledger(m: re.Match[str], ln: Line, out: ParsedLog) -> None:
    add(out, "gpu_free_start", m[1], m[3], ln)
    add(out, "gpu_total", m[2], m[3], ln)
    put(out, "gpu_memory_utilization", float(m[4]), ln.no)
    add(out, "budget", m[5], m[3], ln)
    add(out, "consumed", m[6], m[3], ln)  # weights + non-torch (+ persistent torch allocations)
    add(out, "peak_activation_with_estimate", m[7], m[3], ln)  # transient peak + the CUDA-graph estimate
    add(out, "cuda_graph_pool", m[8], m[3], ln)


@rule(r"Current kv cache memory in use is ([\d.]+) ?(GiB)")
def _kv_in_use(m: re.Match[str], ln: Line, out: ParsedLog) -> None:
    add(out, "kv_in_use", m[1], m[2], ln)


# 0.34 extensible KV cache (extensible_kv_cache.py:694, :537)
@rule(r"Memory after warmup: ([\d.]+) (GiB) free, ([\d.]+) GiB committed to the KV cache, ([\d.]+) GiB kept for "
      r"transient activations \(([\d.]+) GiB allocated at peak, ([\d.]+) GiB of torch reservation growth\); (\d+) "
      r"KV cache blocks \(([\d.]+) GiB\) fit within the requested ([\d.]+) GiB")
def _after_warmup(m: re.Match[str], ln: Line, out: ParsedLog) -> None:
    for i, key in ((1, "free_after_warmup"), (3, "kv_committed"), (4, "transient_kept"), (5, "transient_peak"),
                   (6, "torch_reserve_growth"), (8, "kv_measured"), (9, "budget")):
        add(out, key, m[i], m[2], ln)
    add(out, "gpu_blocks", m[7], "blocks", ln)


@rule(r"Extended KV cache to (\d+) blocks \(([\d.]+) ?(GiB)\)")
def _extended(m: re.Match[str], ln: Line, out: ParsedLog) -> None:
    add(out, "kv_extended", m[2], m[3], ln)


# vLLM 0.6.5-0.7 printed the profile as a table, one "name   value" per line (worker.py)
_TABLE = {"total_gpu_memory": "gpu_total", "the current vLLM instance can use": "budget",
          "model weights take": "weights_profiled", "non_torch_memory": "non_torch",
          "PyTorch activation peak memory": "activation_peak", "available_kv_cache_memory": "kv_available"}


@rule(r"\] (" + "|".join(_TABLE) + r")\s++(-?[\d.]++)(GiB)\s*+$")
def _profile_table(m: re.Match[str], ln: Line, out: ParsedLog) -> None:
    add(out, _TABLE[m[1]], m[2], m[3], ln)


@rule(r"\] gpu_memory_utilization\s++([\d.]++)\s*+$")
def _table_utilization(m: re.Match[str], ln: Line, out: ParsedLog) -> None:
    put(out, "gpu_memory_utilization", float(m[1]), ln.no)


# vLLM 0.6.4: one line "Memory profiling results: duration=..., total_gpu_memory=79.15GiB, ..."
_ONE_LINE = {"total_gpu_memory": "gpu_total", "initial_memory_usage": "initial_usage", "peak_torch_memory":
             "peak_torch", "memory_usage_post_profile": "post_profile", "non_torch_memory": "non_torch",
             "kv_cache_size": "kv_available"}


@rule(r"Memory profiling results: (.*)")
def _profile_one_line(m: re.Match[str], ln: Line, out: ParsedLog) -> None:
    for k, v, unit in _KEY_GIB.findall(m[1]):
        if k in _ONE_LINE:
            add(out, _ONE_LINE[k], v, unit, ln)
    util = _UTIL.search(m[1])
    if util and util[1].removesuffix("."):
        put(out, "gpu_memory_utilization", float(util[1].removesuffix(".")), ln.no)


RULES: tuple[Rule, ...] = tuple(v for v in list(globals().values()) if isinstance(v, Rule))
EXPECTED = {"weights loaded": ("weights", "weights_profiled", "consumed"),
            "activation peak": ("activation_peak", "peak_activation_with_estimate", "transient_peak"),
            "available KV memory": ("kv_available", "kv_in_use", "kv_extended")}


def _tagged(text: str):
    for ln in lines(text):
        m = _TAG.match(ln.text)
        if m:
            ln.text = ln.text[m.end():]
            worker = f"worker {m[3]}" if m[1] == "VllmWorkerProcess" else None
            ln.device = m[2] or worker or (f"rank{m[4]}" if m[4] is not None else None)
        yield ln


def parse(text: str) -> tuple[ParsedLog, int]:
    """Parse a vLLM startup log; returns the result and how many lines were recognised."""
    out = ParsedLog(runtime="vllm")
    hits = run(RULES, _tagged(text), out)
    out.version = str(out.setting("version")) if out.setting("version") else None
    for label, keys in EXPECTED.items():
        if not any(out.all(k) for k in keys):
            out.missing.append(label)
    if not out.all("kv_tokens") and not out.all("gpu_blocks"):
        out.missing.append("KV cache size (tokens or blocks)")
    return out, hits
