"""vLLM's multi-token-prediction draft: `--speculative-config '{"method": "mtp", "num_speculative_tokens": N}'`.

vLLM turns the target's config into the draft's (vllm/config/speculative.py: deepseek_v3 -> deepseek_mtp,
glm4_moe -> glm4_moe_mtp, qwen3_next -> qwen3_next_mtp) and builds the draft class after the target
(v1/spec_decode/llm_base_proposer.py load_model). The draft's GPU memory:

* weights: its MTP layer(s) - one decoder layer each (attention + the model's MoE FFN) plus the layer's glue
  (DRAFTS) - while the draft's embed_tokens, lm_head and shared_head.head are deleted and replaced by the
  target's (_maybe_share_embeddings, _maybe_share_lm_head); gpu_model_runner.load_model measures the model memory
  after both loads (DeviceMemoryProfiler: allocated bytes after empty_cache), so the copies freed do not count;
* KV cache: the draft's attention layer(s) join the per-layer KV specs (get_kv_cache_spec runs over both models'
  layers), so they take a page of every block in the group of their kind: the KV cache plan is the target's
  with the draft's layers appended (`with_draft`).

Checked against vLLM's own classes on the meta device (model_specs/vllm/mtp.json, `python -m app.measure
vllm-mtp`; tests/test_vllm_mtp.py) at tensor parallel size 1.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.estimator.memo import per_spec
from app.estimator.params import Tensor, language_tensors
from app.estimator.spec import LanguageModel, ModelSpec


@dataclass(frozen=True, slots=True, repr=False)
class Draft:
    """How vLLM builds one MTP layer of a family, beyond the decoder layer it wraps."""

    norms: tuple[str, ...]  # RMSNorm(hidden) of the glue
    proj: str  # Linear(2 x hidden -> hidden), no bias
    proj_replicated: bool  # nn.Linear (every rank holds it) or ColumnParallelLinear(gather_output=True)
    router_bytes: int | None  # the MoE router's element bytes when vLLM keeps it in float32, else None
    correction_bias: bool  # e_score_correction_bias: float32 [experts] parameter of the gate
    layer_type: str  # the draft layer's attention kind (our layer_types)
    source: str
    ffn: str = "model"  # the draft layer's FFN: "model" (MoE when the model has experts) or "dense"


DRAFTS: dict[str, Draft] = {
    # vllm 0.32.0 model_executor/models/deepseek_mtp.py DeepSeekMultiTokenPredictorLayer (enorm, hnorm, eh_proj
    # nn.Linear, shared_head.norm, mtp_block = DeepseekV2DecoderLayer); deepseek_v2.py DeepseekV2MoE gate
    # (ReplicatedLinear in the model dtype) with e_score_correction_bias float32 (noaux_tc)
    "deepseek_mtp": Draft(("enorm", "hnorm", "shared_head.norm"), "eh_proj", True, None, True, "full",
                          "vllm model_executor/models/deepseek_mtp.py"),
    # vllm 0.32.0 model_executor/models/glm4_moe_mtp.py (the same glue); glm4_moe.py Glm4MoE gate GateLinear
    # params_dtype float32, e_score_correction_bias float32
    "glm4_moe_mtp": Draft(("enorm", "hnorm", "shared_head.norm"), "eh_proj", True, 4, True, "full",
                          "vllm model_executor/models/glm4_moe_mtp.py"),
    # vllm 0.32.0 model_executor/models/qwen3_next_mtp.py Qwen3NextMultiTokenPredictor: fc
    # ColumnParallelLinear(2h -> h, gather_output=True), pre_fc_norm_embedding, pre_fc_norm_hidden, norm, layers =
    # Qwen3NextDecoderLayer(layer_type "full_attention")
    "qwen3_next_mtp": Draft(("pre_fc_norm_embedding", "pre_fc_norm_hidden", "norm"), "fc", False, None, False,
                            "full", "vllm model_executor/models/qwen3_next_mtp.py"),
    # vllm 0.32.0 model_executor/models/qwen3_5_mtp.py Qwen3_5MultiTokenPredictor: Qwen3-Next's glue around a
    # Qwen3_5DecoderLayer (full attention; dense MLP in Qwen3_5MTP, MoE in Qwen3_5MoeMTP)
    "qwen3_5_mtp": Draft(("pre_fc_norm_embedding", "pre_fc_norm_hidden", "norm"), "fc", False, None, False,
                         "full", "vllm model_executor/models/qwen3_5_mtp.py"),
    # vllm 0.32.0 model_executor/models/mimo_v2_mtp.py MiMoV2MTPLayer: enorm, hnorm, eh_proj ReplicatedLinear,
    # input_layernorm, self_attn with the SWA configuration (sliding, sink bias), pre_mlp_layernorm, dense
    # MiMoV2MLP(intermediate_size), final_layernorm
    "mimo_v2_mtp": Draft(("enorm", "hnorm", "final_layernorm"), "eh_proj", True, None, False, "sliding",
                         "vllm model_executor/models/mimo_v2_mtp.py", ffn="dense"),
}

# --speculative-config method names that load the checkpoint's MTP layers: "mtp" (vLLM's name since 0.10.2,
# vllm/config/speculative.py), and the per-family names older releases took (MTPModelTypes), which name a draft
METHODS = ("mtp", *DRAFTS)


@per_spec
def with_draft(lm: LanguageModel, layers: int) -> LanguageModel:
    """The target's layers and then the draft's: the layers whose KV specs vLLM plans the cache over."""
    draft = DRAFTS[lm.mtp_draft.draft]  # type: ignore[union-attr]
    update: dict = {"layers": lm.layers + layers}
    if lm.layer_types is not None:
        update["layer_types"] = (*lm.layer_types, *(draft.layer_type,) * layers)
    if draft.layer_type == "sliding":
        update["sliding_window_layers"] = lm.sliding_window_layers + layers
    if lm.layer_ffn is not None:
        ffn = "moe" if lm.moe and draft.ffn == "model" else "dense"
        update["layer_ffn"] = (*lm.layer_ffn, *(ffn,) * layers)
    return lm.model_copy(update=update)


@per_spec
def _draft_spec(spec: ModelSpec, layers: int) -> ModelSpec:
    return spec.model_copy(update={"language_model": with_draft(spec.language_model, layers)})


def draft_tensors(spec: ModelSpec) -> list[Tensor]:
    """The draft's own tensors (the decoder layer(s) after the target's, named blk.L.., and the glue)."""
    lm = spec.language_model
    mtp = lm.mtp_draft
    assert mtp is not None
    d = DRAFTS[mtp.draft]
    ext = with_draft(lm, mtp.layers)
    out = [t for t in language_tensors(ext) if t.layer is not None and t.layer >= lm.layers]
    for i in range(lm.layers, lm.layers + mtp.layers):
        out += [Tensor(f"mtp.{i}.{n}.weight", (lm.hidden,), "language", "norm", None) for n in d.norms]
        out.append(Tensor(f"mtp.{i}.{d.proj}.weight", (lm.hidden, 2 * lm.hidden), "language",
                          "norm" if d.proj_replicated else "linear", None))
    return out


def draft_weights(spec: ModelSpec, fmt, placement, compute_bytes: int) -> tuple[int, int]:
    """(bytes on one rank, of which replicated) of the draft's own parameters; the glue's norms and its nn.Linear
    projection stay in the compute dtype (not quantized)."""
    from app.estimator.runtimes.vllm_memory import _share

    lm = spec.language_model
    mtp = lm.mtp_draft
    assert mtp is not None
    d = DRAFTS[mtp.draft]
    ext = _draft_spec(spec, mtp.layers)
    total = replicated = 0
    for t in draft_tensors(spec):
        if t.kind == "router" and d.router_bytes is not None:
            size = t.numel * d.router_bytes
            total, replicated = total + size, replicated + size
            continue
        if t.kind == "norm" and t.name.startswith("mtp."):  # glue: whole on every rank, the compute dtype
            size = t.numel * compute_bytes
            total, replicated = total + size, replicated + size
            continue
        size, rep = _share(ext, fmt, t, placement)
        total, replicated = total + size, replicated + rep
    if d.correction_bias and lm.moe is not None:
        size = mtp.layers * lm.moe.experts * 4
        total, replicated = total + size, replicated + size
    return total, replicated

