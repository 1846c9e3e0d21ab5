"""llama.cpp (llama-server / llama-cli, CUDA backend): the buffers it allocates at load, per device.

Model, KV and output buffers are llama.cpp's own arithmetic (exact; `llamacpp_buffers`), the compute
buffers a model of ggml's graph allocator fitted to llama.cpp's printed sizes (calibrated;
`llamacpp_compute`). Flags resolve as llama-server resolves them (`llamacpp_context`).
Sources: llama.cpp src/llama-context.cpp, src/llama-model.cpp, src/llama-kv-cache*.cpp (build vendored
in llama-cpp-python 0.3.36); checked against real llama.cpp on this project's grid (model_specs/llamacpp).
"""

from __future__ import annotations

from app.estimator.gguf.arch import ARCHS, SLUG_ARCH, GgufArch
from app.estimator.runtimes.base import CUDA_CONTEXT_BYTES, MiB, Runtime, RuntimeInput, RuntimeMemory
from app.estimator.runtimes.llamacpp_buffers import (
    STATE_RULE,
    catalog_tensors,
    kv_cache,
    output_buffer,
    weights,
)
from app.estimator.runtimes.llamacpp_compute import compute_buffers, vision_buffer
from app.estimator.runtimes.llamacpp_context import LLAMA_NAME, LlamaContext, resolve_context
from app.estimator.schema import HostMemory, LlamaCppBuffer, LlamaCppReport, VramRequest


def _arch(inp: RuntimeInput) -> GgufArch | None:
    name = inp.gguf_arch or SLUG_ARCH.get(inp.spec.slug)
    return ARCHS.get(name) if name else None


def _notes(c: LlamaContext, lm_layers: int, kv_cells: int, swa_cells: int) -> list[str]:
    layers = "all layers" if c.n_gpu_layers > lm_layers else f"{max(c.n_gpu_layers - 1, 0)} of {lm_layers} layers"
    out = "and the output layer " if c.output_on_gpu else ""
    notes = [
        f"llama.cpp: {layers} {out}on the GPU (-ngl {c.n_gpu_layers}); token_embd stays in host RAM (exact)",
        f"n_ctx {c.n_ctx:,} (padded to 256), n_ctx_seq {c.n_ctx_seq:,}, {c.n_parallel} sequence(s), "
        f"{'unified' if c.kv_unified else 'split'} KV: {kv_cells:,} cells per layer"
        + (f", {swa_cells:,} per sliding-window layer" if swa_cells else "") + " (exact)",
        f"KV cache K {LLAMA_NAME[c.type_k.slug]}, V {LLAMA_NAME[c.type_v.slug]} (exact)",
        f"compute buffer for n_ubatch {c.n_ubatch} (n_batch {c.n_batch}), flash attention "
        f"{'on' if c.flash_attention else 'off'}: CUDA figure modelled from llama.cpp's graph (calibrated)",
        "output buffer: logits for n_parallel sequences, in host RAM (exact)",
        f"CUDA context {CUDA_CONTEXT_BYTES // MiB} MiB per GPU (assumed)",
    ]
    return notes


def memory(inp: RuntimeInput) -> RuntimeMemory:
    spec, lm = inp.spec, inp.spec.language_model
    req = inp.request or VramRequest(model=spec.slug)
    c = resolve_context(lm, req, inp.sequence, inp.kv, inp.flash_attention, inp.images)
    arch = _arch(inp)
    tensors = inp.gguf_tensors or catalog_tensors(spec, inp.fmt.slug)
    w = weights(tensors, c, lm)
    kv = kv_cache(lm, c, arch)
    comp = compute_buffers(lm, c, arch)
    out = output_buffer(lm, c)
    mmproj = inp.weights.vision_bytes if spec.vision is not None else 0
    vision = vision_buffer(inp) if c.mmproj and inp.images else 0
    gpu_weights = w.gpu + (mmproj if c.mmproj else 0)
    host = HostMemory(weights=w.host, kv_cache=kv.host, compute=comp.host, output=out,
                      total_bytes=w.host + kv.host + comp.host + out + kv.state_host, state=kv.state_host)
    buffers = [
        LlamaCppBuffer(name="model", device="gpu", bytes=w.gpu, basis="exact"),
        LlamaCppBuffer(name="model", device="host", bytes=w.host, basis="exact"),
        LlamaCppBuffer(name="kv", device="gpu", bytes=kv.gpu, basis="exact"),
        LlamaCppBuffer(name="kv", device="host", bytes=kv.host, basis="exact"),
        LlamaCppBuffer(name="compute", device="gpu", bytes=comp.gpu, basis="calibrated"),
        LlamaCppBuffer(name="compute", device="host", bytes=comp.host, basis="calibrated"),
        LlamaCppBuffer(name="output", device="host", bytes=out, basis="exact"),
    ]
    if kv.rs_cells:
        buffers[4:4] = [LlamaCppBuffer(name="rs", device="gpu", bytes=kv.state_gpu, basis="exact"),
                        LlamaCppBuffer(name="rs", device="host", bytes=kv.state_host, basis="exact")]
    if c.mmproj:
        buffers += [LlamaCppBuffer(name="mmproj", device="gpu", bytes=mmproj, basis="exact"),
                    LlamaCppBuffer(name="mmproj_compute", device="gpu", bytes=vision, basis="calibrated")]
    report = LlamaCppReport(
        n_ctx=c.n_ctx, n_ctx_seq=c.n_ctx_seq, n_batch=c.n_batch, n_ubatch=c.n_ubatch, n_parallel=c.n_parallel,
        kv_unified=c.kv_unified, n_gpu_layers=c.n_gpu_layers, output_on_gpu=c.output_on_gpu,
        cache_type_k=LLAMA_NAME[c.type_k.slug], cache_type_v=LLAMA_NAME[c.type_v.slug], mmproj=c.mmproj,
        mmproj_bytes=mmproj, buffers=buffers)
    notes = _notes(c, lm.layers, kv.cells_full, kv.cells_swa)
    if spec.vision is not None:
        notes.append(f"vision projector (mmproj, F16, {mmproj / MiB:,.0f} MiB) "
                     + ("loaded on the GPU" if c.mmproj else "not loaded (llama-server loads it only with "
                        "--mmproj, or by default with -hf)"))
    overhead = inp.gpu_count * CUDA_CONTEXT_BYTES if c.n_gpu_layers else 0
    mem = RuntimeMemory(gpu_weights, kv.gpu, comp.gpu + vision, overhead, c.n_ctx_seq,
                        weights_host=w.host, assumptions=notes, host=host, llamacpp=report)
    mem.state_rule = STATE_RULE
    if kv.rs_cells:
        mem.state, mem.state_per_sequence = kv.state_gpu, kv.state_per_sequence
        notes.append(f"recurrent states (llama_memory_recurrent): {kv.rs_cells} cell(s) = max(1, n_seq_max), F32 r "
                     f"(conv_kernel - 1 inputs) and s states, {kv.state_per_sequence:,} bytes per sequence (exact)")
        notes.append("compute buffer: not calibrated on a hybrid recurrent model (the fit covers attention-only "
                     "architectures)")
    return mem


RUNTIME = Runtime(
    slug="llama.cpp",
    label="llama.cpp (CUDA)",
    source="llama.cpp src/llama-context.cpp, src/llama-model.cpp, src/llama-kv-cache.cpp",
    kv_types=("fp16", "bf16", "fp32", "q8_0", "q5_1", "q5_0", "q4_1", "q4_0", "iq4_nl"),
    default_kv=lambda spec, fmt: "fp16",
    memory=memory,
)
