"""llama.cpp multi-token-prediction drafts: llama-server --spec-type draft-mtp, as the llama.cpp that
llama-cpp-python 0.3.36 vendors (0c1e57098bba43ac29e6e3b677cdceebdd22334f) sizes them.

- The target model loads its MTP block (mparams.load_mtp, common/common.cpp L1625; without it the block's
  tensors are TENSOR_SKIP, src/models/qwen35.cpp L38): "a full-attention Qwen3.5 decoder block" plus
  nextn.eh_proj {2 n_embd, n_embd}, enorm, hnorm and shared_head_norm (qwen35.cpp L93-L116, qwen35moe.cpp
  L106-L139). The catalog's tables do not hold it (convert_hf_to_gguf.py writes it, our tables are the decoder's):
  it is counted as a copy of the last full-attention layer's tensors plus eh_proj in that layer's attn_output
  type and three F32 norms - an approximation; a GGUF file given holds the real block.
- A second context (LLAMA_CONTEXT_TYPE_MTP) runs over the same weights (common/speculative.cpp L2557-L2568;
  --fit: shares_model, common/common.cpp L1218-L1223, so fit.cpp L250-L254 counts no weights for it) with the
  target's n_ctx (speculative.cpp L2530), n_seq_max = n_parallel, the draft's cache types (--spec-draft-type-k/-v,
  default f16, common/common.h L343-L344, speculative.cpp L2478-L2479) and n_rs_seq 0 (L2534).
- Its memory: a plain KV cache of the nextn layer only (src/llama-model.cpp L2661-L2664 mtp_on_hybrid_qwen,
  L2792-L2804: filter il >= n_layer()), cells as a full-attention layer of the target. Its compute buffer: the MTP
  graph, one block and the logits of at most n_outputs_max = n_parallel outputs (speculative.cpp L2480,
  src/llama-context.cpp L896-L898) - modelled with the main graph's rules, not measured.
- The target context keeps n_rs_seq = --spec-draft-n-max (default 3, common/common.h L328) more recurrent-state
  rows per cell for rollback (common/common.h L396-L401, common.cpp L1635; src/llama-memory-recurrent.cpp L101:
  rows = mem_size x (1 + n_rs_seq)) on the architectures llm_arch_supports_rs_rollback lists
  (src/llama-arch.cpp L1123-L1139).
"""

from __future__ import annotations

from dataclasses import dataclass

from app.estimator.errors import InvalidRequest
from app.estimator.gguf.arch import GgufArch
from app.estimator.gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType
from app.estimator.kv_cache import KV_TYPES
from app.estimator.runtimes.llamacpp_backends import Backend
from app.estimator.runtimes.llamacpp_buffers import TensorEntry, _kv_table, cuda_alloc_size, kv_cells
from app.estimator.runtimes.llamacpp_compute import F32, _phases, _phases_2026, compute_buffers
from app.estimator.runtimes.llamacpp_context import LlamaContext
from app.estimator.schema import VramRequest
from app.estimator.spec import LanguageModel

N_MAX_DEFAULT = 3  # common_params_speculative_draft::n_max (common/common.h L328), --spec-draft-n-max
DRAFT_CACHE_TYPE = "fp16"  # --spec-draft-type-k / -v default GGML_TYPE_F16 (common/common.h L343-L344)

# GGUF architectures whose draft-mtp this module sizes: the MTP block and graph of each (one block: GGML_ASSERT
# n_layer_nextn == 1 in graph_mtp)
MTP_ARCHS: dict[str, str] = {
    "qwen35": "src/models/qwen35.cpp load_block_mtp L93-L116, graph_mtp L485-L500",
    "qwen35moe": "src/models/qwen35moe.cpp load_block_mtp L106-L139, graph_mtp",
}
# llm_arch_supports_rs_rollback (src/llama-arch.cpp L1123-L1139), in our GGUF architecture names
RS_ROLLBACK = frozenset({"qwen35", "qwen35moe", "nemotron_h", "nemotron_h_moe", "lfm2", "lfm2moe", "kimi_k3",
                         "qwen4exp", "deepseek4", "glm5_next", "bailingmoe3"})


@dataclass(frozen=True, slots=True, repr=False)
class MtpDraft:
    """The memory draft-mtp adds, in bytes."""

    n_max: int  # --spec-draft-n-max
    n_rs_seq: int  # extra recurrent-state rows per cell in the target context
    weights: int  # the MTP block on the device of the output layer (approximate for catalog tables)
    kv: int  # the MTP context's KV cache (exact)
    compute: int  # the MTP context's device compute buffer (model)
    host_compute: int  # its host compute buffer (the target's host rule)
    output: int  # its output buffer (logits for n_parallel outputs, host; exact)
    weights_exact: bool  # True when the block came from a GGUF file's own tensors


def requested(req: VramRequest) -> bool:
    """llama.cpp takes `speculative_method` "mtp" as --spec-type draft-mtp; vLLM's per-family names are refused."""
    if req.speculative_method is None:
        if req.num_speculative_tokens is not None:
            raise InvalidRequest("num_speculative_tokens", "num_speculative_tokens needs speculative_method; "
                                 "allowed: unset, or with speculative_method mtp")
        return False
    if req.speculative_method != "mtp":
        raise InvalidRequest("speculative_method", f"llama.cpp's MTP draft is --spec-type draft-mtp: "
                             f"{req.speculative_method!r} names a vLLM draft; allowed on llama.cpp: mtp")
    return True


def _block_tensors(tensors: tuple[TensorEntry, ...], lm: LanguageModel) -> list[TensorEntry]:
    """The target's last full-attention layer's tensors (the shapes of the MTP block's decoder part)."""
    kinds = lm.layer_types or ()
    full = [il for il, k in enumerate(kinds) if k == "full"] or [lm.layers - 1]
    prefix = f"blk.{full[-1]}."
    return [t for t in tensors if t.name.startswith(prefix)]


def _block_bytes(tensors: tuple[TensorEntry, ...], lm: LanguageModel, backend: Backend) -> tuple[int, bool]:
    """(device bytes of the MTP block, exact): a GGUF file's blk.<n_layer>.* tensors, else the approximation."""
    own = [t for t in tensors if t.layer is not None and t.layer >= lm.layers]
    if own:
        return sum(cuda_alloc_size(t, backend.alignment, backend.row_padding) for t in own), True
    layer = _block_tensors(tensors, lm)
    out = next((t for t in layer if t.name.endswith("attn_output.weight")), None)
    ty = out.ggml_type if out is not None else GGMLQuantizationType.F16
    block, size = GGML_QUANT_SIZES[ty]
    eh = TensorEntry("nextn.eh_proj.weight", ty, 2 * lm.hidden, 2 * lm.hidden // block * size * lm.hidden, 0)
    norm = TensorEntry("nextn.enorm.weight", GGMLQuantizationType.F32, lm.hidden, lm.hidden * F32, 0)
    total = sum(cuda_alloc_size(t, backend.alignment, backend.row_padding) for t in [*layer, eh])
    return total + 3 * cuda_alloc_size(norm, backend.alignment, backend.row_padding), False


def draft(req: VramRequest, lm: LanguageModel, arch: GgufArch | None, c: LlamaContext, backend: Backend,
          tensors: tuple[TensorEntry, ...]) -> MtpDraft:
    """The draft's memory for the resolved target context `c` (its n_ctx is the draft's, speculative.cpp L2530)."""
    name = arch.name if arch else None
    if not (lm.mtp_draft or lm.mtp_layers):
        raise InvalidRequest("speculative_method", "this model stores no MTP layer: llama.cpp's draft-mtp needs "
                             "one (a GGUF converted without --no-mtp); allowed: unset")
    if name not in MTP_ARCHS:
        raise InvalidRequest("speculative_method", f"llama.cpp draft-mtp is modelled for {', '.join(MTP_ARCHS)} "
                             f"GGUF architectures; this model is {name or 'not mapped to one'}; allowed: unset")
    n_max = req.num_speculative_tokens or N_MAX_DEFAULT
    weights, exact = _block_bytes(tensors, lm, backend)
    f16 = KV_TYPES[DRAFT_CACHE_TYPE]
    t = _kv_table(lm, arch, f16, f16, not c.flash_attention)
    il = next((x.layer for x in _block_tensors(tensors, lm) if x.layer is not None), lm.layers - 1)
    per_cell = (t.k_full[il + 1] - t.k_full[il]) + (t.v_full[il + 1] - t.v_full[il])  # a full-attention layer
    kv = per_cell * kv_cells(lm, c, False)
    # the MTP graph: one block's attention and FFN moments, the logits of min(n_ubatch, n_parallel) outputs
    phases = _phases_2026(lm, c, arch, backend) if backend.graph == "2026" else _phases(lm, c, arch, "cuda")
    outputs = min(c.n_ubatch, c.n_parallel)
    logits = phases["output"] - lm.vocab * c.n_ubatch * F32 + lm.vocab * outputs * F32
    compute = max(phases["attention"], phases["ffn"], logits)
    host = compute_buffers(lm, c, arch, backend).host  # inputs the CPU fills: as the target's graph
    return MtpDraft(n_max, n_max if name in RS_ROLLBACK else 0, weights, kv, compute, host,
                    lm.vocab * c.n_parallel * F32, exact)
