"""One vLLM rank's share of each weight tensor under tensor, data and expert parallelism.

Each tensor (named as params.py names them, GGUF style) is reshaped to what vLLM's layer on one rank creates
(vLLM 0.34.0, checked against its own classes on the meta device: model_specs/vllm/weights.json, written by
`python -m app.measure vllm-weights`, tests/test_vllm_weights.py):

* VocabParallelEmbedding / ParallelLMHead: the vocabulary padded to 64, then split by TP
  (model_executor/layers/vocab_parallel_embedding.py DEFAULT_VOCAB_PADDING_SIZE, pad_vocab_size);
* QKVParallelLinear: query heads / TP; KV heads max(1, KV heads / TP), each rank holding a whole KV head when TP
  exceeds them (model_executor/layers/linear.py QKVParallelLinear: num_kv_head_replicas); its bias likewise;
* Column / MergedColumnParallelLinear (gate, up): output rows / TP, bias / TP;
* RowParallelLinear (o_proj, down): input columns / TP; the bias whole on every rank;
* attention sinks: one per local query head (model_executor/models/gpt_oss.py: num_attention_heads // tp_size);
* router (GateLinear / ReplicatedLinear), norms: whole on every rank;
* FusedMoE experts (fused_moe/config.py FusedMoEParallelConfig.make): without expert parallelism every rank holds
  every expert with intermediate size / (TP x DP) (flatten_tp_across_dp_and_pcp); with
  --enable-expert-parallel, EP = TP x DP ranks each hold whole experts, experts // EP (+1 on the first
  experts % EP ranks, fused_moe/expert_map_manager.py determine_expert_map). The per-partition intermediate size
  is then rounded up as the quantization method's kernel needs (MOE_INTERMEDIATE_ALIGN). Dense layers, attention
  and embeddings are split by TP only: every DP rank holds its own copy.

Tensors no rule names keep the old estimate (linears and biases split evenly by TP, the rest whole).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from app.estimator.params import Tensor
from app.estimator.spec import LanguageModel

VOCAB_PADDING = 64  # vllm/model_executor/layers/vocab_parallel_embedding.py DEFAULT_VOCAB_PADDING_SIZE

# Per-partition MoE intermediate size rounding per weight format, as an H100 runs it. mxfp4 (gpt-oss): vLLM 0.34.0
# picks Mxfp4MoeBackend.TRITON on SM90 (fused_moe/oracle/mxfp4.py:421-458 priority; FlashInfer TRT-LLM is SM100)
# and rounds to 64 (:900-901 mxfp4_round_up_hidden_size_and_intermediate_size, the else branch; hidden unchanged).
# Unquantized MoE on CUDA (Triton): no rounding (oracle/unquantized.py:353-365).
MOE_INTERMEDIATE_ALIGN = {"mxfp4": 64}


@dataclass(frozen=True, slots=True, repr=False)
class Placement:
    """How one rank is placed: tensor parallel size, data parallel size, expert parallelism on or off."""

    tp: int
    dp: int = 1
    ep: bool = False

    @property
    def ep_size(self) -> int:
        return self.tp * self.dp if self.ep else 1

    @property
    def moe_tp(self) -> int:
        """Ranks each expert's intermediate dimension is split across (1 with expert parallelism)."""
        return 1 if self.ep else self.tp * self.dp


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


def _round_up(x: int, m: int) -> int:
    return _cdiv(x, m) * m


def local_experts(experts: int, ep_size: int) -> int:
    """Experts on rank 0 (determine_expert_map: base + 1 on the first experts % EP ranks)."""
    return experts // ep_size + (1 if experts % ep_size else 0)


def expert_intermediate(ffn: int, p: Placement, fmt: str) -> int:
    """One expert's intermediate size on one rank (after the kernel's rounding)."""
    part = ffn // p.moe_tp
    align = MOE_INTERMEDIATE_ALIGN.get(fmt)
    return _round_up(part, align) if align else part


def _kv_heads(lm: LanguageModel, layer: int | None) -> tuple[int, int]:
    """(KV heads, head dim) of this layer's k/v projections (per-layer geometry where the spec has one)."""
    g = lm.kv_geometry.get(lm.layer_types[layer]) if lm.layer_types is not None and layer is not None else None
    return (g.kv_heads, g.head_dim) if g is not None else (lm.kv_heads, lm.head_dim)


def _kv_rows(lm: LanguageModel, t: Tensor, p: Placement) -> int:
    kv, _ = _kv_heads(lm, t.layer)
    return t.shape[0] // kv * max(1, kv // p.tp)


Rule = Callable[[LanguageModel, Tensor, Placement, str], tuple[int, ...]]


def _column(lm: LanguageModel, t: Tensor, p: Placement, fmt: str) -> tuple[int, ...]:
    return (t.shape[0] // p.tp, *t.shape[1:])


def _row(lm: LanguageModel, t: Tensor, p: Placement, fmt: str) -> tuple[int, ...]:
    if t.kind == "bias":  # RowParallelLinear keeps the whole bias on every rank
        return t.shape
    return (*t.shape[:-1], t.shape[-1] // p.tp)


def _kv(lm: LanguageModel, t: Tensor, p: Placement, fmt: str) -> tuple[int, ...]:
    return (_kv_rows(lm, t, p), *t.shape[1:])


def _qkv(lm: LanguageModel, t: Tensor, p: Placement, fmt: str) -> tuple[int, ...]:
    kv, head_dim = _kv_heads(lm, t.layer)
    return ((lm.heads // p.tp + 2 * max(1, kv // p.tp)) * head_dim, *t.shape[1:])


def _whole(lm: LanguageModel, t: Tensor, p: Placement, fmt: str) -> tuple[int, ...]:
    return t.shape


def _expert_in(lm: LanguageModel, t: Tensor, p: Placement, fmt: str) -> tuple[int, ...]:
    """gate / up experts [E, F, D] (bias [E, F]): local experts x the rank's intermediate slice."""
    e, f = local_experts(t.shape[0], p.ep_size), expert_intermediate(t.shape[1], p, fmt)
    return (e, f, *t.shape[2:])


def _expert_out(lm: LanguageModel, t: Tensor, p: Placement, fmt: str) -> tuple[int, ...]:
    """down experts [E, D, F] (bias [E, D], whole on every rank holding the expert)."""
    e = local_experts(t.shape[0], p.ep_size)
    if t.kind == "bias":
        return (e, t.shape[1])
    return (e, t.shape[1], expert_intermediate(t.shape[2], p, fmt))


# The rank's shape of each tensor, by its role (the name between "blk.N." and ".weight" / ".bias").
RULES: dict[str, Rule] = {
    "attn_q": _column, "attn_k": _kv, "attn_v": _kv, "attn_qkv": _qkv, "attn_output": _row,
    "attn_sinks": _column,
    # MLA (vllm 0.32.0 model_executor/models/deepseek_v2.py DeepseekV2MLAAttention): q_a and kv_a fused in
    # DeepSeekV2FusedQkvAProjLinear (MergedColumnParallelLinear, disable_tp=True) or kv_a a ReplicatedLinear,
    # whole on every rank; q_b / q and kv_b ColumnParallelLinear; o_proj RowParallelLinear (attn_output)
    "attn_q_a": _whole, "attn_kv_a_mqa": _whole, "attn_q_b": _column, "attn_kv_b": _column,
    "ffn_gate": _column, "ffn_up": _column, "ffn_down": _row,
    "ffn_gate_shexp": _column, "ffn_up_shexp": _column, "ffn_down_shexp": _row,
    "ffn_gate_inp": _whole,
    "ffn_gate_exps": _expert_in, "ffn_up_exps": _expert_in, "ffn_down_exps": _expert_out,
}


def replicated(t: Tensor) -> bool:
    """Whole on every rank whatever the parallelism: norms, the router, a RowParallelLinear's bias."""
    r = RULES.get(role(t))
    return (t.kind == "norm" and r is None) or r is _whole or (t.kind == "bias" and r is _row)


def role(t: Tensor) -> str:
    parts = t.name.split(".")
    return parts[2] if parts[0] == "blk" and len(parts) == 4 else parts[0]


def rank_shape(lm: LanguageModel, t: Tensor, p: Placement, fmt: str) -> tuple[int, ...] | None:
    """The shape vLLM creates on rank 0 for tensor `t`, or None where no rule names it (language model only)."""
    if t.part != "language":
        return None
    if t.kind in ("embedding", "output"):
        return (_cdiv(_round_up(t.shape[0], VOCAB_PADDING), p.tp), *t.shape[1:])
    rule = RULES.get(role(t))
    if rule is None:
        return t.shape if t.kind == "norm" else None
    return rule(lm, t, p, fmt)
