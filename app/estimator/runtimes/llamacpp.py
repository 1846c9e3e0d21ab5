"""llama.cpp (llama-server / llama-cli, CUDA backend): the buffers it allocates at load, per device.

Model, KV and output buffers are llama.cpp's own arithmetic (exact; `llamacpp_buffers`), the compute
buffers a model of ggml's graph allocator fitted to llama.cpp's printed sizes (calibrated;
`llamacpp_compute`). Flags resolve as llama-server resolves them (`llamacpp_context`).
Sources: llama.cpp src/llama-context.cpp, src/llama-model.cpp, src/llama-kv-cache*.cpp (build vendored
in llama-cpp-python 0.3.36); checked against real llama.cpp on this project's grid (model_specs/llamacpp).
"""

from __future__ import annotations

import re
import shlex

from app.estimator.errors import UnknownChoice
from app.estimator.gguf.arch import ARCHS, SLUG_ARCH, GgufArch
from app.estimator.runtimes.base import CUDA_CONTEXT_BYTES, MiB, Runtime, RuntimeInput, RuntimeMemory
from app.estimator.runtimes.llamacpp_backends import BACKENDS, Backend
from app.estimator.runtimes.llamacpp_buffers import (
    STATE_RULE,
    catalog_tensors,
    kv_cache,
    largest_host_tensor,
    output_buffer,
    weights,
)
from app.estimator.runtimes.llamacpp_compute import compute_buffers, vision_buffer
from app.estimator.runtimes.llamacpp_context import LLAMA_NAME, LlamaContext, resolve_context
from app.estimator.runtimes.llamacpp_fit import Layers, fit
from app.estimator.schema import HostMemory, LlamaCppBuffer, LlamaCppFit, LlamaCppReport, VramRequest


def _arch(inp: RuntimeInput) -> GgufArch | None:
    name = inp.gguf_arch or SLUG_ARCH.get(inp.spec.slug)
    return ARCHS.get(name) if name else None


def _backend(req: VramRequest) -> Backend:
    if req.backend not in BACKENDS:
        raise UnknownChoice("backend", req.backend, list(BACKENDS), "llama.cpp ggml backends")
    return BACKENDS[req.backend]


def _device_bytes(inp: RuntimeInput, req: VramRequest, backend: Backend, n_ctx: int,
                  layers: Layers | None) -> tuple[int, ...]:
    """(model, context, compute, total) on the device, then (model, context, compute) on the host, for --fit's
    candidate: n_ctx and layers (None: as asked)."""
    spec, lm = inp.spec, inp.spec.language_model
    update: dict[str, object] = {"n_ctx": n_ctx}
    to_host = None
    if layers is not None:
        update["n_gpu_layers"] = layers.n_layer
        patterns = [re.compile(p) for p in layers.overrides(lm.layers)]
        if patterns:
            def to_host(name: str) -> bool:
                return any(p.search(name) for p in patterns)
    c = resolve_context(lm, req.model_copy(update=update), inp.sequence, inp.kv, inp.flash_attention, 0)
    tensors = inp.gguf_tensors or catalog_tensors(spec, inp.fmt.slug)
    w = weights(tensors, c, lm, backend.alignment, backend.row_padding, to_host)
    kv = kv_cache(lm, c, _arch(inp))
    comp = compute_buffers(lm, c, _arch(inp), backend, largest_host_tensor(tensors, c, lm))
    return w.gpu, kv.gpu, comp.gpu, w.gpu + kv.gpu + comp.gpu, w.host, kv.host, comp.host


def _fit_print(backend: Backend, device: tuple[int, int, int], host: tuple[int, int, int]) -> list[str]:
    """common_fit_print (common/fit.cpp): `<device> model context compute` per device, then `Host ...`, in MiB."""
    rows = [(backend.device, device)] if backend.gpu else []
    return [f"{name} {' '.join(str(x // MiB) for x in sizes)}" for name, sizes in [*rows, ("Host", host)]]


def _fit(inp: RuntimeInput, req: VramRequest, backend: Backend) -> LlamaCppFit | None:
    """llama.cpp --fit for the free memory the request gives (one device)."""
    if req.free_memory is None or not backend.gpu:
        return None
    lm = inp.spec.language_model
    margin = req.fit_target * MiB
    n_ctx = req.n_ctx if req.n_ctx is not None else resolve_context(
        lm, req, inp.sequence, inp.kv, inp.flash_attention, 0).n_ctx
    d = fit(lambda ctx, layers: _device_bytes(inp, req, backend, ctx, layers)[3], req.free_memory, margin, n_ctx,
            lm.max_context, req.fit_ctx, lm.layers, lm.moe is not None, req.n_gpu_layers is not None)
    model, context, compute, total, *host = _device_bytes(inp, req, backend, d.n_ctx, d.layers)
    ngl = d.layers.n_layer if d.layers else (lm.layers + 1 if req.n_gpu_layers is None else req.n_gpu_layers)
    overrides = d.layers.overrides(lm.layers) if d.layers else []
    lines = _fit_print(backend, (model, context, compute), (host[0], host[1], host[2]))
    parts = ["llama-server", "-m", f"{inp.spec.name}-{inp.fmt.slug.upper()}.gguf", "-c", str(d.n_ctx),
             "-ngl", str(ngl), "-fa", "on" if inp.flash_attention else "off", "-ub", str(req.n_ubatch)]
    for p in overrides:
        parts += ["-ot", f"{p}=CPU"]
    parts += ["--fit", "off"]
    return LlamaCppFit(free=req.free_memory, target=margin, status=d.status, n_ctx=d.n_ctx, n_gpu_layers=ngl,
                       n_cpu_moe_layers=sorted({int(m[1]) for p in overrides if (m := re.match(r"blk\\\.(\d+)", p))
                                                and int(m[1]) < lm.layers}),
                       overflow=d.layers.overflow if d.layers and d.layers.n_part and d.layers.overflow != "MOE"
                       else None, overrides=overrides, projected=total, fit_print=lines,
                       command=" ".join(shlex.quote(x) for x in parts), notes=d.notes)


def _notes(c: LlamaContext, lm_layers: int, kv_cells: int, swa_cells: int, backend: Backend,
           lm_vocab: int) -> list[str]:
    layers = "all layers" if c.n_gpu_layers > lm_layers else f"{max(c.n_gpu_layers - 1, 0)} of {lm_layers} layers"
    out = "and the output layer " if c.output_on_gpu else ""
    notes = [
        f"llama.cpp: {layers} {out}on the GPU (-ngl {c.n_gpu_layers}); token_embd stays in host RAM (exact)",
        f"n_ctx {c.n_ctx:,} (padded to 256), n_ctx_seq {c.n_ctx_seq:,}, {c.n_parallel} sequence(s), "
        f"{'unified' if c.kv_unified else 'split'} KV: {kv_cells:,} cells per layer"
        + (f", {swa_cells:,} per sliding-window layer" if swa_cells else "") + " (exact)",
        f"KV cache K {LLAMA_NAME[c.type_k.slug]}, V {LLAMA_NAME[c.type_v.slug]} (exact)",
        f"compute buffer for n_ubatch {c.n_ubatch} (n_batch {c.n_batch}), flash attention "
        f"{'on' if c.flash_attention else 'off'}: {backend.label} figure modelled from llama.cpp's graph "
        f"({backend.graph} rules, calibrated)",
        f"output buffer: logits for n_parallel sequences, in host RAM ({backend.host_buffer}; exact)",
        f"CUDA context {CUDA_CONTEXT_BYTES // MiB} MiB per GPU (assumed)",
        f"logits reserved for n_ubatch outputs; llama-server after PR 23861 reserves n_parallel: up to "
        f"{max(c.n_ubatch - c.n_parallel, 0) * lm_vocab * 4 / MiB:,.0f} MiB less",
    ]
    return notes


def memory(inp: RuntimeInput) -> RuntimeMemory:
    spec, lm = inp.spec, inp.spec.language_model
    req = inp.request or VramRequest(model=spec.slug)
    backend = _backend(req)
    if not backend.gpu:
        req = req.model_copy(update={"n_gpu_layers": 0})
    c = resolve_context(lm, req, inp.sequence, inp.kv, inp.flash_attention, inp.images)
    arch = _arch(inp)
    tensors = inp.gguf_tensors or catalog_tensors(spec, inp.fmt.slug)
    w = weights(tensors, c, lm, backend.alignment, backend.row_padding)
    kv = kv_cache(lm, c, arch)
    comp = compute_buffers(lm, c, arch, backend, largest_host_tensor(tensors, c, lm))
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
        mmproj_bytes=mmproj, buffers=buffers, backend=backend.name, device=backend.device,
        fit_print=_fit_print(backend, (w.gpu, kv.gpu, comp.gpu), (w.host, kv.host, comp.host)),
        fit=_fit(inp, req, backend))
    notes = _notes(c, lm.layers, kv.cells_full, kv.cells_swa, backend, lm.vocab)
    if spec.vision is not None:
        notes.append(f"vision projector (mmproj, F16, {mmproj / MiB:,.0f} MiB) "
                     + ("loaded on the GPU" if c.mmproj else "not loaded (llama-server loads it only with "
                        "--mmproj, or by default with -hf)"))
    overhead = inp.gpu_count * CUDA_CONTEXT_BYTES if c.n_gpu_layers else 0
    mem = RuntimeMemory(gpu_weights, kv.gpu, comp.gpu + vision, overhead, c.n_ctx_seq,
                        weights_host=w.host, assumptions=notes, host=host, llamacpp=report)
    if lm.mtp_layers and inp.gguf_tensors is None:
        # convert_hf_to_gguf.py Step35Model (llama-cpp-python 0.3.36's vendored llama.cpp, conversion/step3.py):
        # block_count += num_nextn_predict_layers unless --no-mtp; the main context caches trunk layers only
        # (src/llama-model.cpp create_memory: filter il < n_layer() when n_layer_nextn > 0)
        mem.warnings.append(f"llama.cpp: convert_hf_to_gguf.py writes the checkpoint's {lm.mtp_layers} MTP layers "
                            "into the GGUF unless run with --no-mtp; these weights are the decoder's "
                            f"{lm.layers} layers only (a GGUF with the MTP layers is larger; its KV cache is not: "
                            "llama.cpp caches no MTP layer in the main context)")
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
    unsupported={
        # gguf 0.19.0 (llama.cpp's gguf-py, constants.py MODEL_ARCH): deepseek, deepseek2, deepseek2-ocr only
        "DeepSeek-V4": "llama.cpp has no DeepSeek-V4 architecture (gguf-py 0.19.0 MODEL_ARCH lists deepseek, "
                       "deepseek2 and deepseek2-ocr only): convert_hf_to_gguf.py cannot write a GGUF of it and "
                       "llama.cpp cannot load one",
    },
)
