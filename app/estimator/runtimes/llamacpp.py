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
from dataclasses import replace
from functools import lru_cache
from typing import TYPE_CHECKING

from app.estimator.errors import UnknownChoice
from app.estimator.gguf.arch import ARCHS, SLUG_ARCH, GgufArch
from app.estimator.runtimes.base import CUDA_CONTEXT_BYTES, MiB, RuntimeInput, RuntimeMemory
from app.estimator.runtimes.llamacpp_backends import BACKENDS, Backend
from app.estimator.runtimes.llamacpp_buffers import (
    STATE_RULE,
    catalog_tensors,
    cuda_alloc_size,
    kv_cache,
    largest_host_tensor,
    output_buffer,
    tensor_group,
    weights,
)
from app.estimator.runtimes.llamacpp_compute import compute_buffers, layer_compute, vision_buffer
from app.estimator.runtimes.llamacpp_context import LLAMA_NAME, LlamaContext, resolve_context
from app.estimator.runtimes.llamacpp_mtp import MTP_ARCHS, RS_ROLLBACK, MtpDraft, draft, requested
from app.estimator.schema import (
    HostMemory,
    LlamaCppBuffer,
    LlamaCppFit,
    LlamaCppFitDevice,
    LlamaCppReport,
    VramRequest,
)

if TYPE_CHECKING:  # --fit's search loads with the first request that gives free_memory
    from app.estimator.runtimes.llamacpp_fit import FitDecision, Layers, Plan, Use


def _arch(inp: RuntimeInput) -> GgufArch | None:
    name = inp.gguf_arch or SLUG_ARCH.get(inp.spec.slug)
    return ARCHS.get(name) if name else None


def _context(inp: RuntimeInput, req: VramRequest, images: int) -> LlamaContext:
    """resolve_context, plus draft-mtp's recurrent-state rows for rollback (n_rs_seq = --spec-draft-n-max on the
    architectures that support it; common/common.cpp L1635, src/llama-context.cpp L105-L110)."""
    c = resolve_context(inp.spec.language_model, req, inp.sequence, inp.kv, inp.flash_attention, images)
    arch = _arch(inp)
    if requested(req) and arch is not None and arch.name in RS_ROLLBACK and arch.name in MTP_ARCHS:
        c = replace(c, n_rs_seq=req.num_speculative_tokens or 3)
    return c


def _mtp(inp: RuntimeInput, req: VramRequest, c: LlamaContext, backend: Backend) -> MtpDraft | None:
    if not requested(req):
        return None
    tensors = inp.gguf_tensors or catalog_tensors(inp.spec, inp.fmt.slug)
    return draft(req, inp.spec.language_model, _arch(inp), c, backend, tensors)


def _backend(req: VramRequest) -> Backend:
    if req.backend not in BACKENDS:
        raise UnknownChoice("backend", req.backend, list(BACKENDS), "llama.cpp ggml backends")
    return BACKENDS[req.backend]


def _device_bytes(inp: RuntimeInput, req: VramRequest, backend: Backend, n_ctx: int,
                  layers: Layers | None) -> tuple[int, ...]:
    """(model, context, compute, total) on the device, then (model, context, compute) on the host, for --fit's
    candidate: n_ctx and layers (None: as asked). Context = KV cache + recurrent states (llama_memory_hybrid's
    memory_breakdown adds both, src/llama-memory-hybrid.cpp)."""
    spec, lm = inp.spec, inp.spec.language_model
    update: dict[str, object] = {"n_ctx": n_ctx}
    to_host = None
    if layers is not None:
        update["n_gpu_layers"] = layers.n_layer
        patterns = [re.compile(p) for p in layers.overrides(lm.layers)]
        if patterns:
            def to_host(name: str) -> bool:
                return any(p.search(name) for p in patterns)
    c = _context(inp, req.model_copy(update=update), 0)
    tensors = inp.gguf_tensors or catalog_tensors(spec, inp.fmt.slug)
    w = weights(tensors, c, lm, backend.alignment, backend.row_padding, to_host)
    kv = kv_cache(lm, c, _arch(inp))
    comp = compute_buffers(lm, c, _arch(inp), backend, largest_host_tensor(tensors, c, lm))
    model, context, compute = w.gpu, kv.gpu + kv.state_gpu, comp.gpu
    host = [w.host, kv.host + kv.state_host, comp.host]
    mtp = _mtp(inp, req, c, backend)
    if mtp is not None:  # the block with the output layer; the draft context (fit.cpp add_extra_memory L206-L258)
        extra = (mtp.weights, mtp.kv, mtp.compute)
        if c.output_on_gpu:
            model, context, compute = model + extra[0], context + extra[1], compute + extra[2]
        else:
            host = [h + x for h, x in zip(host, extra, strict=True)]
    return model, context, compute, model + context + compute, *host


def _device_name(backend: Backend, i: int) -> str:
    """CUDA0 -> CUDA<i> (ggml_backend_dev_name numbers the devices of a backend from 0)."""
    return _numbered(backend.device, i)


@lru_cache(maxsize=1024)  # backends x device indices (gpu_count is at most MAX_GPUS)
def _numbered(device: str, i: int) -> str:
    return re.sub(r"\d+$", str(i), device)


def _devices_bytes(inp: RuntimeInput, req: VramRequest, backend: Backend, frees: list[int], n_ctx: int,
                   plan: Plan | None) -> tuple[list[tuple[int, int, int]], tuple[int, int, int]]:
    """Several devices, layer split: (model, context, compute) per device, then the host's, for --fit's candidate
    (plan None: as asked, the user's -ngl split by free memory as llama.cpp's default split).

    Layers: device d holds the contiguous block of plan.layers[d].n_layer layers after the previous devices',
    starting at i_gpu_start = n_layer + 1 - ngl; the last layer (il = n_layer) is the output layer
    (src/llama-model.cpp L1589-L1614). Tensors an override names go where it says (host or the next device);
    token_embd stays on the host (dev_input), and is copied to the output's device when tied. KV and recurrent
    states sit on their layer's device (offload_kqv). Compute: the device of the output layer holds the
    single-device compute buffer, the others the attention and FFN moments only (no logits) - a model, not
    measured on several devices.
    """
    from app.estimator.runtimes.llamacpp_fit import Layers, Plan, default_split  # --fit / several devices only

    spec, lm = inp.spec, inp.spec.language_model
    n, nd = lm.layers, len(frees)
    if plan is None:
        ngl = n + 1 if req.n_gpu_layers is None else min(req.n_gpu_layers, n + 1)
        plan = Plan(tuple(Layers(k) for k in default_split(frees, ngl, n)), (None,) * nd)
    ngl = plan.n_gpu_layers
    c = _context(inp, req.model_copy(update={"n_ctx": n_ctx, "n_gpu_layers": ngl}), 0)
    start, bounds = n + 1 - ngl, [0]
    for x in plan.layers:
        bounds.append(bounds[-1] + x.n_layer)
    dev_of = {start + k: d for d in range(nd) for k in range(bounds[d], bounds[d + 1])}
    overrides = [(re.compile(p), to) for p, to in plan.overrides(n)]
    tensors = inp.gguf_tensors or catalog_tensors(spec, inp.fmt.slug)
    model = [0] * nd
    host = 0
    tied = not any(t.name == "output.weight" for t in tensors)
    for t in tensors:
        key = tensor_group(t)
        d = None if key == "input" else dev_of.get(n if key in ("output", "output_weight") else int(key))
        if d is not None:
            d = next((to for p, to in overrides if p.search(t.name)), d)  # first match (llama-model-loader.cpp L1237)
        size = cuda_alloc_size(t, backend.alignment, backend.row_padding)
        if d is None:
            host += t.nbytes
        else:
            model[d] += size
        if tied and key == "input" and n in dev_of:
            model[dev_of[n]] += size
    if not overrides:  # no override: the host figure is the mmapped range, as the one-device breakdown's
        host = weights(tensors, c, lm, backend.alignment, backend.row_padding).host
    arch = _arch(inp)

    def kv_from(k: int) -> tuple[int, int]:  # KV + states of layers il >= start + k on devices, and the host's
        kv = kv_cache(lm, replace(c, n_gpu_layers=ngl - k), arch)
        return kv.gpu + kv.state_gpu, kv.host + kv.state_host

    kvs = [kv_from(b)[0] for b in bounds]
    comp = compute_buffers(lm, c, arch, backend, largest_host_tensor(tensors, c, lm))
    out_dev = dev_of.get(n)
    rows = [(model[d], kvs[d] - kvs[d + 1],
             comp.gpu if d == out_dev else layer_compute(lm, c, arch, backend) if plan.layers[d].n_layer else 0)
            for d in range(nd)]
    host_row = (host, kv_from(0)[1], comp.host)
    mtp = _mtp(inp, req, c, backend)
    if mtp is not None:  # the MTP block and the draft context with the output layer (see _device_bytes)
        extra = (mtp.weights, mtp.kv, mtp.compute)
        if out_dev is None:
            host_row = tuple(h + x for h, x in zip(host_row, extra, strict=True))  # type: ignore[assignment]
        else:
            rows[out_dev] = tuple(r + x for r, x in zip(rows[out_dev], extra, strict=True))  # type: ignore[call-overload]
    return rows, host_row


def _fit_print(backend: Backend, device: tuple[int, int, int] | list[tuple[int, int, int]],
               host: tuple[int, int, int]) -> list[str]:
    """common_fit_print (common/fit.cpp): `<device> model context compute` per device, then `Host ...`, in MiB."""
    devices = device if isinstance(device, list) else [device]
    rows = [(_device_name(backend, i), d) for i, d in enumerate(devices)] if backend.gpu else []
    return [f"{name} {model // MiB} {context // MiB} {compute // MiB}"
            for name, (model, context, compute) in [*rows, ("Host", host)]]


def _fit(inp: RuntimeInput, req: VramRequest, backend: Backend) -> LlamaCppFit | None:
    """llama.cpp --fit for the free memory the request gives, on each of gpu_count devices."""
    if req.free_memory is None or not backend.gpu:
        return None
    # --fit's search loads with the first request that gives free_memory (a fast `vram` start)
    from app.estimator.runtimes.llamacpp_fit import Use, fit_devices

    lm = inp.spec.language_model
    nd = inp.gpu_count
    frees, margins = [req.free_memory] * nd, [req.fit_target * MiB] * nd  # one --fit-target: every device
    c0 = _context(inp, req, 0)
    n_ctx = req.n_ctx if req.n_ctx is not None else c0.n_ctx
    if nd == 1:
        def project(ctx: int, plan: Plan | None) -> list[Use]:
            b = _device_bytes(inp, req, backend, ctx, plan.layers[0] if plan else None)
            return [Use(b[0], b[3])]
    else:
        def project(ctx: int, plan: Plan | None) -> list[Use]:
            return [Use(m, m + k + x) for m, k, x in _devices_bytes(inp, req, backend, frees, ctx, plan)[0]]
    ngl_set = False if req.n_gpu_layers is None else req.n_gpu_layers
    d = fit_devices(project, frees, margins, n_ctx, lm.max_context, req.fit_ctx, lm.layers, lm.moe is not None,
                    ngl_set, c0.n_streams)
    if requested(req):
        d.notes.append("draft-mtp: llama.cpp counts the MTP block as one more layer (fit.cpp L141-L143: hp_ngl += "
                       "n_layer_nextn); here it travels with the output layer, so -ngl and the layer split exclude it")
    return _fit_answer(inp, req, backend, d, frees, margins)


def _fit_answer(inp: RuntimeInput, req: VramRequest, backend: Backend, d: FitDecision, frees: list[int],
                margins: list[int]) -> LlamaCppFit:
    from app.estimator.runtimes.llamacpp_fit import default_split

    lm, nd = inp.spec.language_model, len(frees)
    if nd == 1:
        model, context, compute, total, *host = _device_bytes(inp, req, backend, d.n_ctx, d.layers)
        rows: list[tuple[int, int, int]] = [(model, context, compute)]
        host_row = (host[0], host[1], host[2])
    else:
        rows, host_row = _devices_bytes(inp, req, backend, frees, d.n_ctx, d.plan)
    plan = d.plan
    ngl = plan.n_gpu_layers if plan else (lm.layers + 1 if req.n_gpu_layers is None
                                          else min(req.n_gpu_layers, lm.layers + 1))
    split = plan.tensor_split if plan else (default_split(frees, ngl, lm.layers) if nd > 1 else (ngl,))
    overrides = plan.overrides(lm.layers) if plan else []
    lines = _fit_print(backend, rows if nd > 1 else rows[0], host_row)
    parts = ["llama-server", "-m", f"{inp.spec.name}-{inp.fmt.slug.upper()}.gguf", "-c", str(d.n_ctx),
             "-ngl", str(ngl), "-fa", "on" if inp.flash_attention else "off", "-ub", str(req.n_ubatch)]
    if nd > 1:  # the split --fit sets (tensor_split[id] = layers of device id, common/fit.cpp L556)
        parts += ["--tensor-split", ",".join(map(str, split))]
    for p, to in overrides:
        parts += ["-ot", f"{p}={'CPU' if to is None else _device_name(backend, to)}"]
    if requested(req):
        parts += ["--spec-type", "draft-mtp", "--spec-draft-n-max", str(req.num_speculative_tokens or 3)]
    parts += ["--fit", "off"]
    first = plan.layers[0] if plan and nd == 1 else None
    overflow = sorted({x.overflow for x in plan.layers if x.n_part and x.overflow != "MOE"}) if plan else []
    devices = [LlamaCppFitDevice(name=_device_name(backend, i), free=frees[i], target=margins[i], n_layer=split[i],
                                 n_part=plan.layers[i].n_part if plan else 0,
                                 overflow_to=(None if not plan or plan.overflow_to[i] is None
                                              else _device_name(backend, plan.overflow_to[i])),
                                 model=rows[i][0], context=rows[i][1], compute=rows[i][2], projected=sum(rows[i]))
               for i in range(nd)]
    return LlamaCppFit(free=frees[0], target=margins[0], status=d.status, n_ctx=d.n_ctx, n_gpu_layers=ngl,
                       n_cpu_moe_layers=sorted({int(m[1]) for p, to in overrides
                                                if to is None and (m := re.match(r"blk\\\.(\d+)", p))
                                                and int(m[1]) < lm.layers}),
                       overflow=(first.overflow if first and first.n_part and first.overflow != "MOE" else None)
                       if nd == 1 else (",".join(overflow) or None),
                       overrides=[p for p, _ in overrides], projected=sum(sum(r) for r in rows),
                       fit_print=lines, command=" ".join(shlex.quote(x) for x in parts), notes=d.notes,
                       tensor_split=list(split) if nd > 1 else [], devices=devices if nd > 1 else [])


def _notes(c: LlamaContext, lm_layers: int, kv_cells: int, swa_cells: int, backend: Backend,
           lm_vocab: int) -> list[str]:
    cells = (f"n_ctx {c.n_ctx:,} (padded to 256), n_ctx_seq {c.n_ctx_seq:,}, {c.n_parallel} sequence(s), "
             f"{'unified' if c.kv_unified else 'split'} KV: {kv_cells:,} cells per layer"
             + (f", {swa_cells:,} per sliding-window layer" if swa_cells else "") + " (exact)")
    first, *rest = _context_notes(lm_layers, c.n_gpu_layers, c.type_k.slug, c.type_v.slug, c.n_ubatch, c.n_batch,
                                  c.flash_attention, backend, c.n_parallel, lm_vocab)
    return [first, cells, *rest]


@lru_cache(maxsize=4096)  # a context's lines but its cell counts: the same for every n_ctx of one setup
def _context_notes(lm_layers: int, n_gpu_layers: int, type_k: str, type_v: str, n_ubatch: int, n_batch: int,
                   flash_attention: bool, backend: Backend, n_parallel: int, lm_vocab: int) -> tuple[str, ...]:
    layers = "all layers" if n_gpu_layers > lm_layers else f"{max(n_gpu_layers - 1, 0)} of {lm_layers} layers"
    out = "and the output layer " if n_gpu_layers >= 1 else ""  # LlamaContext.output_on_gpu
    return (
        f"llama.cpp: {layers} {out}on the GPU (-ngl {n_gpu_layers}); token_embd stays in host RAM (exact)",
        f"KV cache K {LLAMA_NAME[type_k]}, V {LLAMA_NAME[type_v]} (exact)",
        f"compute buffer for n_ubatch {n_ubatch} (n_batch {n_batch}), flash attention "
        f"{'on' if flash_attention else 'off'}: {backend.label} figure modelled from llama.cpp's graph "
        f"({backend.graph} rules, calibrated)",
        f"output buffer: logits for n_parallel sequences, in host RAM ({backend.host_buffer}; exact)",
        f"CUDA context {CUDA_CONTEXT_BYTES // MiB} MiB per GPU (assumed)",
        f"logits reserved for n_ubatch outputs; llama-server after PR 23861 reserves n_parallel: up to "
        f"{max(n_ubatch - n_parallel, 0) * lm_vocab * 4 / MiB:,.0f} MiB less",
    )


def _mtp_notes(mtp: MtpDraft, c: LlamaContext, lm) -> list[str]:
    notes = [f"--spec-type draft-mtp: a second context (LLAMA_CONTEXT_TYPE_MTP) over the target's weights, n_ctx "
             f"{c.n_ctx:,} as the target's, KV of the MTP layer only in f16 (--spec-draft-type-k/-v): "
             f"{mtp.kv / MiB:,.1f} MiB (exact); its compute buffer {mtp.compute / MiB:,.1f} MiB (the target's graph "
             f"rules for one block and {min(c.n_ubatch, c.n_parallel)} output(s), not measured)",
             "MTP block weights (loaded with draft-mtp): " + (
                 f"{mtp.weights / MiB:,.1f} MiB from the GGUF's own tensors (exact)" if mtp.weights_exact else
                 f"{mtp.weights / MiB:,.1f} MiB, approximated as the last full-attention layer plus nextn.eh_proj "
                 "(in its attn_output type) and three F32 norms (the catalog's table has no MTP block)")]
    if mtp.n_rs_seq:
        notes.append(f"recurrent states kept {1 + mtp.n_rs_seq}x (n_rs_seq = --spec-draft-n-max {mtp.n_max}, for "
                     "rollback of rejected drafts; llama-memory-recurrent.cpp: rows = cells x (1 + n_rs_seq)) (exact)")
    return notes


def memory(inp: RuntimeInput) -> RuntimeMemory:
    spec, lm = inp.spec, inp.spec.language_model
    req = inp.request or VramRequest(model=spec.slug)
    backend = _backend(req)
    if not backend.gpu:
        req = req.model_copy(update={"n_gpu_layers": 0})
    c = _context(inp, req, inp.images)
    arch = _arch(inp)
    tensors = inp.gguf_tensors or catalog_tensors(spec, inp.fmt.slug)
    w = weights(tensors, c, lm, backend.alignment, backend.row_padding)
    kv = kv_cache(lm, c, arch)
    comp = compute_buffers(lm, c, arch, backend, largest_host_tensor(tensors, c, lm))
    out = output_buffer(lm, c)
    mmproj = inp.weights.vision_bytes if spec.vision is not None else 0
    vision = vision_buffer(inp) if c.mmproj and inp.images else 0
    mtp = _mtp(inp, req, c, backend)
    # draft-mtp: the MTP block and the draft context sit with the output layer (device, or host without it)
    on_gpu = mtp is not None and c.output_on_gpu
    mtp_dev = (mtp.weights, mtp.kv, mtp.compute) if mtp is not None and on_gpu else (0, 0, 0)
    mtp_host = (mtp.weights, mtp.kv, mtp.compute) if mtp is not None and not on_gpu else (0, 0, 0)
    mtp_host_io = (mtp.host_compute, mtp.output) if mtp is not None else (0, 0)
    gpu_weights = w.gpu + (mmproj if c.mmproj else 0) + mtp_dev[0]
    host_compute = comp.host + mtp_host_io[0] + mtp_host[2]
    host = HostMemory(weights=w.host + mtp_host[0], kv_cache=kv.host + mtp_host[1], compute=host_compute,
                      output=out + mtp_host_io[1],
                      total_bytes=w.host + kv.host + comp.host + out + kv.state_host + sum(mtp_host) + sum(mtp_host_io),
                      state=kv.state_host)
    buffers = [
        LlamaCppBuffer("model", "gpu", w.gpu, "exact"),
        LlamaCppBuffer("model", "host", w.host, "exact"),
        LlamaCppBuffer("kv", "gpu", kv.gpu, "exact"),
        LlamaCppBuffer("kv", "host", kv.host, "exact"),
        LlamaCppBuffer("compute", "gpu", comp.gpu, "calibrated"),
        LlamaCppBuffer("compute", "host", comp.host, "calibrated"),
        LlamaCppBuffer("output", "host", out, "exact"),
    ]
    if kv.rs_cells:
        buffers[4:4] = [LlamaCppBuffer("rs", "gpu", kv.state_gpu, "exact"),
                        LlamaCppBuffer("rs", "host", kv.state_host, "exact")]
    if mtp is not None:
        where = "gpu" if on_gpu else "host"
        buffers += [
            LlamaCppBuffer(name="mtp_model", device=where, bytes=mtp.weights,
                           basis="exact" if mtp.weights_exact else "approximate"),
            LlamaCppBuffer("mtp_kv", where, mtp.kv, "exact"),
            LlamaCppBuffer("mtp_compute", where, mtp.compute, "approximate"),
            LlamaCppBuffer("mtp_compute", "host", mtp.host_compute, "approximate"),
            LlamaCppBuffer("mtp_output", "host", mtp.output, "exact"),
        ]
    if c.mmproj:
        buffers += [LlamaCppBuffer("mmproj", "gpu", mmproj, "exact"),
                    LlamaCppBuffer("mmproj_compute", "gpu", vision, "calibrated")]
    report = LlamaCppReport(
        n_ctx=c.n_ctx, n_ctx_seq=c.n_ctx_seq, n_batch=c.n_batch, n_ubatch=c.n_ubatch, n_parallel=c.n_parallel,
        kv_unified=c.kv_unified, n_gpu_layers=c.n_gpu_layers, output_on_gpu=c.output_on_gpu,
        cache_type_k=LLAMA_NAME[c.type_k.slug], cache_type_v=LLAMA_NAME[c.type_v.slug], mmproj=c.mmproj,
        mmproj_bytes=mmproj, buffers=buffers, backend=backend.name, device=backend.device,
        fit_print=_fit_print(backend, (w.gpu + mtp_dev[0], kv.gpu + kv.state_gpu, comp.gpu),
                             (w.host + mtp_host[0], kv.host + kv.state_host, comp.host)),
        fit=_fit(inp, req, backend))
    notes = _notes(c, lm.layers, kv.cells_full, kv.cells_swa, backend, lm.vocab)
    if spec.vision is not None:
        notes.append(f"vision projector (mmproj, F16, {mmproj / MiB:,.0f} MiB) "
                     + ("loaded on the GPU" if c.mmproj else "not loaded (llama-server loads it only with "
                        "--mmproj, or by default with -hf)"))
    overhead = inp.gpu_count * CUDA_CONTEXT_BYTES if c.n_gpu_layers else 0
    if mtp is not None:
        notes += _mtp_notes(mtp, c, lm)
    mem = RuntimeMemory(gpu_weights, kv.gpu + mtp_dev[1], comp.gpu + vision + mtp_dev[2], overhead, c.n_ctx_seq,
                        weights_host=w.host, assumptions=notes, host=host, llamacpp=report)
    if lm.mtp_layers and inp.gguf_tensors is None:
        # convert_hf_to_gguf.py Step35Model (llama-cpp-python 0.3.36's vendored llama.cpp, conversion/step3.py):
        # block_count += num_nextn_predict_layers unless --no-mtp; the main context caches trunk layers only
        # (src/llama-model.cpp create_memory: filter il < n_layer() when n_layer_nextn > 0)
        mem.warnings.append(f"llama.cpp: convert_hf_to_gguf.py writes the checkpoint's {lm.mtp_layers} MTP layers "
                            "into the GGUF unless run with --no-mtp; these weights are the decoder's "
                            f"{lm.layers} layers only (a GGUF with the MTP layers is larger; its KV cache is not: "
                            "llama.cpp caches no MTP layer in the main context)")
    if inp.gpu_count > 1 and report.fit is None and c.n_gpu_layers:
        mem.warnings.append(f"llama.cpp on {inp.gpu_count} GPUs without free_memory: these buffers are one device's "
                            f"({backend.device}) plus a CUDA context per GPU, summed, not llama.cpp's layer split; "
                            "give free_memory (bytes free on each GPU) for the per-device split --fit makes")
    mem.state_rule = STATE_RULE
    if kv.rs_cells:
        mem.state, mem.state_per_sequence = kv.state_gpu, kv.state_per_sequence
        notes.append(f"recurrent states (llama_memory_recurrent): {kv.rs_cells} cell(s) = max(1, n_seq_max), F32 r "
                     f"(conv_kernel - 1 inputs) and s states, {kv.state_per_sequence:,} bytes per sequence (exact)")
        notes.append("compute buffer: not calibrated on a hybrid recurrent model (the fit covers attention-only "
                     "architectures)")
    return mem
