"""llama.cpp / llama-server / Ollama runner startup logs (2024-2026 formats).

Line formats follow llama.cpp's own printers: src/llama-model-loader.cpp (`- kv N: key type = value`),
src/llama-model.cpp print_info (`llm_load_print_meta:` before b4500, `print_info:` after), the tensor
loader (`llm_load_tensors:` / `load_tensors:`; `CPU buffer size` before mid-2024, `CPU_Mapped model buffer
size` after), the context (`llama_new_context_with_model:` / `llama_init_from_model:` / `llama_context:`),
the KV cache (`llama_kv_cache_init:` / `llama_kv_cache_unified:` / `llama_kv_cache:`), and
common/fit.cpp (`llama_params_fit_impl:` and `--fit-print`). Ollama wraps them in its own server lines.
"""

from __future__ import annotations

import re

from app.logs.model import ParsedLog
from app.logs.rules import Line, Rule, add, lines, num, put, rule, run

_SIZE = r"=\s*+(-?[\d.]++) (MiB)"


def buffer_rule(pattern: str, name: str) -> Rule:
    """A buffer line: group 1 the device, groups 2-3 the size and its unit, recorded as figure `name`."""
    def handle(m: re.Match[str], ln: Line, out: ParsedLog) -> None:
        add(out, name, m[2], m[3], ln, m[1])
    return rule(pattern)(handle)
# GGUF metadata keys worth keeping (the architecture prefix is dropped: llama.block_count -> block_count)
_GGUF_KEYS = {"general.architecture", "general.name", "general.file_type", "general.size_label", "block_count",
              "context_length", "embedding_length", "feed_forward_length", "attention.head_count",
              "attention.head_count_kv", "attention.key_length", "vocab_size", "expert_count"}
_META_KEYS = {"arch", "n_ctx_train", "n_embd", "n_layer", "n_head", "n_head_kv", "n_embd_head_k", "n_ff",
              "n_vocab", "n_expert", "model type", "model ftype", "file type", "model params", "general.name",
              "n_swa", "causal attn", "no_alloc"}
_CTX_KEYS = {"n_seq_max", "n_ctx", "n_ctx_per_seq", "n_ctx_seq", "n_batch", "n_ubatch", "flash_attn",
             "kv_unified", "causal_attn", "type_k", "type_v"}
_CTX = r"(?:llama_new_context_with_model|llama_init_from_model|llama_context)"
# Every pattern runs in time linear in the line: possessive repeats (`++`, `*+`) where what follows cannot
# be in the repeat, bounded gaps (`.{0,512}?`) where it can, no two unbounded repeats side by side
# (tests/test_hostile_logs.py times each rule on adversarial lines).
_OLLAMA_MEMORY = re.compile(r'(?<![\w.])memory\.([\w.]++)="([\d.]++) (GiB|MiB|B)"')
_FLAG = re.compile(r"(?<![\w-])(--[\w-]++)(?: ([^-\s]\S*+))?")
_KV = (r"(?:llama_kv_cache_init|llama_kv_cache_unified|llama_kv_cache|llama_new_context_with_model"
       r"|llama_init_from_model)")


@rule(r"llama_model_loader: - kv\s{1,16}\d{1,9}:\s{1,64}(\S{1,256})\s{1,64}\S{1,128}\s{1,64}= (.*)$")
def _gguf_kv(m: re.Match[str], ln: Line, out: ParsedLog) -> None:
    key = m[1]
    short = key if key.startswith("general.") else key.split(".", 1)[-1]
    if short in _GGUF_KEYS:
        value = m[2].strip()
        put(out, f"gguf.{short}", num(value) if re.fullmatch(r"-?\d+", value) else value, ln.no)


@rule(r"(?:llm_load_print_meta|print_info): ([\w. ]{1,128}?)\s{0,64}= (.+)$")
def _meta(m: re.Match[str], ln: Line, out: ParsedLog) -> None:
    key, value = m[1].strip(), m[2].strip()
    if key not in _META_KEYS:
        return
    key = "model ftype" if key == "file type" else key
    put(out, f"meta.{key}", num(value) if re.fullmatch(r"-?\d+", value) else value, ln.no)


@rule(r"(?:llm_load_print_meta|print_info): (?:model|file) size\s*+= ([\d.]++) (GiB|MiB) \(([\d.]++) BPW\)")
def _model_size(m: re.Match[str], ln: Line, out: ParsedLog) -> None:
    add(out, "file_size", m[1], m[2], ln)
    put(out, "meta.bpw", float(m[3]), ln.no)


@rule(_CTX + r": (\w++)\s*+= (\S++)\s*+$")
def _context(m: re.Match[str], ln: Line, out: ParsedLog) -> None:
    if m[1] in _CTX_KEYS:
        v = m[2]
        put(out, m[1], num(v) if re.fullmatch(r"-?\d+", v) else v, ln.no)


@rule(r"offloaded (\d++)/(\d++) layers to GPU")
def _offload(m: re.Match[str], ln: Line, out: ParsedLog) -> None:
    put(out, "n_gpu_layers", num(m[1]), ln.no)
    put(out, "n_layer_total", num(m[2]), ln.no)


_model_buffer = buffer_rule(
    r"(?:llm_load_tensors|load_tensors|print_backend_buffers_info):\s++(\S++) (?:model )?buffer size " + _SIZE,
    "model_buffer")


_kv_buffer = buffer_rule(r":\s++(\S++) KV buffer size " + _SIZE, "kv_buffer")


@rule(_KV + r": (?:KV self size|size)\s*+=\s*+([\d.]++) MiB(?: \(\s*+(\d++) cells,\s*+(\d++) layers,\s*+"
      r"(?:\d++/)?(\d++) seqs\))?, K \((\w++)\):\s*+([\d.]++) MiB, V \((\w++)\):\s*+([\d.]++) MiB")
def _kv_total(m: re.Match[str], ln: Line, out: ParsedLog) -> None:
    add(out, "kv_total", m[1], "MiB", ln)
    add(out, "kv_k", m[6], "MiB", ln)
    add(out, "kv_v", m[8], "MiB", ln)
    put(out, "type_k", m[5], ln.no)
    put(out, "type_v", m[7], ln.no)
    if m[2]:
        put(out, "kv_cells", num(m[2]), ln.no)
        put(out, "kv_layers", num(m[3]), ln.no)


@rule(r"kv_size = (\d++), offload = \d++, type_k = '(\w++)', type_v = '(\w++)', n_layer = (\d++)")
def _kv_init(m: re.Match[str], ln: Line, out: ParsedLog) -> None:
    put(out, "kv_cells", num(m[1]), ln.no)
    put(out, "type_k", m[2], ln.no)
    put(out, "type_v", m[3], ln.no)


_output_buffer = buffer_rule(r":\s++(\S++)\s++output buffer size " + _SIZE, "output_buffer")


_compute_buffer = buffer_rule(r":\s++(\S++) compute buffer size " + _SIZE, "compute_buffer")


_lora_buffer = buffer_rule(r":\s++(\S++) LoRA buffer size " + _SIZE, "lora_buffer")


@rule(r"using device (\S++) \(.{0,512}?\) - (\d++) MiB free")
def _device_free(m: re.Match[str], ln: Line, out: ParsedLog) -> None:
    add(out, "device_free", m[2], "MiB", ln, m[1])


@rule(r"(?:build[:=] ?|version: )(\d++) \((\w++)\)|build = (\d++)")
def _build(m: re.Match[str], ln: Line, out: ParsedLog) -> None:
    put(out, "build", num(m[1] or m[3]), ln.no)


@rule(r"Listening on \S{1,256}+ \(version (\d++\.\d++\.\d++)")  # the address: no spaces
def _ollama(m: re.Match[str], ln: Line, out: ParsedLog) -> None:
    put(out, "ollama_version", m[1], ln.no)


@rule(r'msg="offload to \w++".*')
def _ollama_estimate(m: re.Match[str], ln: Line, out: ParsedLog) -> None:
    for k, v, unit in _OLLAMA_MEMORY.findall(m[0]):
        add(out, f"ollama.{k}", v, unit, ln)


@rule(r"runner --model \S++ (.*)")
def _ollama_command(m: re.Match[str], ln: Line, out: ParsedLog) -> None:
    flags = {"--ctx-size": "n_ctx", "--batch-size": "n_batch", "--n-gpu-layers": "n_gpu_layers",
             "--parallel": "n_seq_max", "--flash-attn": "flash_attn", "--kv-cache-type": "type_k"}
    for flag, value in _FLAG.findall(m[1]):
        if flag in flags:
            put(out, "cmd." + flags[flag], num(value) if value.isdigit() else (value or "on"), ln.no)
        if flag == "--lora":
            put(out, "cmd.lora", True, ln.no)
    # Ollama's Go wrapper of llama.cpp (llama/llama.go NewContextParams, every release through 0.12) always sets
    # params.embeddings = true: llama.cpp's output_reserve then holds n_embd floats per sequence beside the logits
    put(out, "cmd.embeddings", True, ln.no)


# --fit's projections: llama_params_fit_impl (src/llama.cpp, late 2025) became common_params_fit_impl (common/fit.cpp)
_FIT = r"(?:llama|common)_params_fit_impl:"


@rule(_FIT + r"\s++- (\S++) \(.{0,512}?\):\s++(\d++) total,\s++(\d++) used,\s++(-?\d++) (deficit|free)")
def _fit_device(m: re.Match[str], ln: Line, out: ParsedLog) -> None:
    add(out, "fit_total", m[2], "MiB", ln, m[1])
    add(out, "fit_used", m[3], "MiB", ln, m[1])
    add(out, f"fit_{m[5]}", m[4], "MiB", ln, m[1])


@rule(_FIT + r" projected to use (\d++) MiB of (?:device|host) memory vs\. (\d++) MiB of free (?:device|host) memory")
def _fit_total(m: re.Match[str], ln: Line, out: ParsedLog) -> None:
    add(out, "fit_projected", m[1], "MiB", ln)
    add(out, "fit_free", m[2], "MiB", ln)


@rule(r"^(\w++) (\d++) (\d++) (\d++)\s*+$")
def _fit_print(m: re.Match[str], ln: Line, out: ParsedLog) -> None:
    if "fit_print" not in out.settings:  # only after the header line below
        return
    for key, v in zip(("fit_model", "fit_context", "fit_compute"), m.groups()[1:], strict=True):
        add(out, key, v, "MiB", ln, m[1])


@rule(r"printing estimated memory in MiB to stdout \(device, model, context, compute\)")
def _fit_print_header(m: re.Match[str], ln: Line, out: ParsedLog) -> None:
    put(out, "fit_print", True, ln.no)


_BREAKDOWN = r"memory_breakdown(?:_print)?:\s*+(?:\|\s*+)?- (\S++)"  # llama_/common_memory_breakdown_print rows


@rule(_BREAKDOWN + r" \(.{0,512}?\)\s*+:?\s*+(?:\|\s*+)?(\d++) = (\d++) \+ \(\s*+(\d++) =\s*+(\d++) \+\s*+(\d++)"
      r" \+\s*+(\d++)\) \+\s*+(-?\d++)")
def _breakdown_device(m: re.Match[str], ln: Line, out: ParsedLog) -> None:
    keys = ("mb_total", "mb_free", "mb_self", "mb_model", "mb_context", "mb_compute", "mb_unaccounted")
    for key, v in zip(keys, m.groups()[1:], strict=True):
        add(out, key, v, "MiB", ln, m[1])


@rule(_BREAKDOWN + r"(?: \(.{0,512}?\))?\s*+:?\s*+(?:\|\s*+)?(?:\d++\s++)?(\d++) =\s*+(\d++) \+\s*+(\d++) \+\s*+"
      r"(\d++)\s*+(?:\|\s*+)?$")
def _breakdown_host(m: re.Match[str], ln: Line, out: ParsedLog) -> None:
    for key, v in zip(("mb_self", "mb_model", "mb_context", "mb_compute"), m.groups()[1:], strict=True):
        add(out, key, v, "MiB", ln, m[1] if m[1] != "Host" else "host")


@rule(r"handle_gptoss: detected Ollama-format gpt-oss GGUF")
def _ollama_gptoss(m: re.Match[str], ln: Line, out: ParsedLog) -> None:
    """Ollama's gpt-oss blobs (file_type 4, MXFP4 experts); llama.cpp converts them at load (handle_gptoss)."""
    put(out, "meta.arch", "gpt-oss", ln.no)
    put(out, "ollama.file_type", "mxfp4_moe", ln.no)


# Ollama's own engine (0.6+, "ollamarunner"): sizes in its human format ("11.5 GiB", "936.0 MiB", "0 B")
_OLLAMA_SIZE = r'size="([\d.]++) (GiB|MiB|KiB|B)"'


_ollama_weights = buffer_rule(r'msg="model weights" (?:buffer|device)=(\S++) ' + _OLLAMA_SIZE, "model_buffer")


_ollama_kv = buffer_rule(r'msg="kv cache" device=(\S++) ' + _OLLAMA_SIZE, "kv_buffer")


_ollama_compute = buffer_rule(
    r'msg="compute graph" (?:backend|device)=(\S++) (?:buffer_type=\S++ )?' + _OLLAMA_SIZE, "compute_buffer")


@rule(r'msg="total memory" ' + _OLLAMA_SIZE)
def _ollama_total(m: re.Match[str], ln: Line, out: ParsedLog) -> None:
    add(out, "ollama.total", m[1], m[2], ln)


@rule(r'architecture=(\w++) file_type=(\w++)')
def _ollama_model(m: re.Match[str], ln: Line, out: ParsedLog) -> None:
    put(out, "meta.arch", m[1], ln.no)
    put(out, "ollama.file_type", m[2], ln.no)


RULES: tuple[Rule, ...] = tuple(v for v in list(globals().values()) if isinstance(v, Rule))
# what a full log prints, and the figure that stands in for it (the memory breakdown table, KV buffers)
EXPECTED = {"model buffers": ("model_buffer", "mb_model"), "KV cache": ("kv_total", "kv_buffer", "mb_context"),
            "compute buffers": ("compute_buffer", "mb_compute")}


def parse(text: str) -> tuple[ParsedLog, int]:
    """Parse a llama.cpp-family log; returns the result and how many lines were recognised."""
    out = ParsedLog(runtime="llama.cpp")
    hits = run(RULES, lines(text), out)
    if not out.first("kv_total") and out.all("kv_buffer"):
        out.notes.append("KV total not printed: the sum of the KV buffers stands for it")
    build, ollama = out.setting("build"), out.setting("ollama_version")
    out.version = f"ollama {ollama}" if ollama else (f"b{build}" if build else None)
    for label, keys in EXPECTED.items():
        if not any(out.all(k) for k in keys):
            out.missing.append(label)
    for key in ("n_ctx", "n_ubatch", "flash_attn"):
        if key not in out.settings:
            out.missing.append(key)
    return out, hits
