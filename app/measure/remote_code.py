"""Trace the remote code a model card runs (`trust_remote_code=True`) on fake tensors, as app/measure/trace.py
traces transformers' native classes.

THUDM/glm-4v-9b and THUDM/glm-4-9b-chat load with trust_remote_code: their own modeling_chatglm.py (and
visual.py, the EVA2-CLIP tower, for glm-4v), not transformers' Glm classes. That code is not ours to commit:
`prepare` takes a folder holding public copies of the files (kept outside the repository, e.g.
/work/remote-code/<slug>/), checks each file's sha256 against REMOTE_MODELS, and imports them as a package
under shims that let code written for transformers 4.4x run under transformers 5.x and fake tensors. Each
trace file records every source file's repository, path, commit and sha256, and the shims.

    python -m app.measure trace-remote glm-4-9b-chat --code /work/remote-code/glm-4-9b-chat --context 1024
    python -m app.measure trace-remote --all --code-root /work/remote-code     # model_specs/traces/remote/

The two steps are what transformers 4.4x generate() runs for these classes (greedy, no padding): the
tokenizer's input_ids and all-ones attention_mask (and, for glm-4v, the processor's float32 1120x1120
image), the model's own prepare_inputs_for_generation (return_last_logit=True: logits of the last position
only), the prefill with use_cache=True, the fp32 copy of the last logits, the model's own
_update_model_kwargs_for_generation (its tuple past_key_values, cat-grown), and one decode step.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import sys
import time
import types
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch
import transformers
from torch._subclasses.fake_tensor import FakeTensor, FakeTensorMode

from app.estimator.spec import ModelSpec
from app.estimator.traces import RemoteSource, TracedRow
from app.measure.trace import PeakTracker, Steps, Untraceable, _OpLog, _params, _total, get_untyped_storages

# --- the public copies traced (files are not committed: only where they are and their hashes) ---
# Each GitHub copy vendors the Hugging Face repository's file; where the copy carries a local edit the note
# says where, and whether the traced path (generate(), no padding, no labels) runs it.


@dataclass(frozen=True)
class SourceFile:
    name: str  # the file name the modeling code imports it by
    upstream: str  # the Hugging Face file it copies
    repository: str
    path: str
    commit: str
    sha256: str
    notes: str = ""

    def record(self) -> RemoteSource:
        return RemoteSource(file=self.name, upstream=self.upstream, repository=self.repository, path=self.path,
                            commit=self.commit, sha256=self.sha256, notes=self.notes)


GLM4V_MODELING = SourceFile(
    "modeling_chatglm.py", "THUDM/glm-4v-9b : modeling_chatglm.py (June 2024)", "XuRui314/GLM4v-Finetune",
    "modeling_chatglm.py", "513b75de0d8cc2f653183c7084c21132c39fa02b",
    "ccd991e5084ee0fff3f5719eeb32b56fe685d695fb908779c088cb33c3c918f0",
    "two local edits marked '此处更改': the padding-mask branch of ChatGLMModel.forward (entered only when the "
    "attention_mask has a zero, or past_key_values with more than one new token) and the labels branch of the "
    "loss; the traced path enters neither")
GLM4V_VISUAL = SourceFile(
    "visual.py", "THUDM/glm-4v-9b : visual.py", "huggingface/optimum-habana",
    "optimum/habana/transformers/models/glm4v/visual.py", "1d8504c6c7666a19d71968dba50976dceaf7c6b6",
    "959986a5c8ecdda376fc05ec5665e6fa15a7a86125fe3abf3b3a02faa08be124",
    "Habana's copy ('Adapted from https://huggingface.co/THUDM/glm-4v-9b/blob/main/visual.py'): its "
    "attention_fn_default calls habana FusedSDPA.apply(q, k, v, None, 0.0, False, ...) where the upstream calls "
    "torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=None, dropout_p=0., is_causal=False); "
    "the shim 'habana_frameworks' maps the first onto the second. Attention.forward reshapes where the upstream "
    "views the SDPA output (the fused kernels' output is laid out [B, L, H, D], so both are views, no copy)")
GLM4_CHAT_MODELING = SourceFile(
    "modeling_chatglm.py", "THUDM/glm-4-9b-chat : modeling_chatglm.py (CORE_ATTENTION_CLASSES, transformers "
    ">= 4.43 _extract_past_from_model_output)", "enterdawn/MSDLLM", "modeling_chatglm.py",
    "2ad99be451f38865efba6503c0fdd5a0ffc50f04", "d81fa4a8c96bad140dd0b4449edcebb8bdfcfd8c1c897ecf5f88eb5320364575",
    "local edits: ChatGLMForSequenceClassification's head (not on the generate path) and the line "
    "'batch_size, seq_length, _ = inputs_embeds.shape' in ChatGLMModel.forward, which the upstream reads from "
    "input_ids (as kurros427/COLING2025@11673b6a's copy of the same file does); the shim 'embed_first' computes "
    "inputs_embeds with the model's own embedding before that line, the tensor and its lifetime unchanged")


# --- the config: ChatGLMConfig's fields, from the released config.json (values via the spec where it has
# them; the rest are the repositories' config.json values, listed here) ---
# THUDM/glm-4-9b-chat and THUDM/glm-4v-9b config.json: rmsnorm true, layernorm_epsilon 1.5625e-07,
# apply_residual_connection_post_layernorm false, post_layer_norm true, multi_query_attention true,
# apply_query_key_layer_scaling true, attention_softmax_in_fp32 true, fp32_residual_connection false,
# original_rope true, hidden_dropout 0, attention_dropout 0; glm-4-9b-chat rope_ratio 500; glm-4v-9b
# boi_token_id 151339, eoi_token_id 151340 and vision_config (shared/reference/glm-family.md).
CHATGLM_FLAGS = dict(rmsnorm=True, layernorm_epsilon=1.5625e-07, apply_residual_connection_post_layernorm=False,
                     post_layer_norm=True, add_bias_linear=False, multi_query_attention=True,
                     apply_query_key_layer_scaling=True, attention_softmax_in_fp32=True,
                     fp32_residual_connection=False, original_rope=True, hidden_dropout=0.0, attention_dropout=0.0,
                     pre_seq_len=None, prefix_projection=False)
GLM4V_TOKENS = dict(boi_token_id=151339, eoi_token_id=151340)


def chatglm_config(spec: ModelSpec) -> dict:
    lm = spec.language_model
    out = dict(CHATGLM_FLAGS, num_layers=lm.layers, padded_vocab_size=lm.vocab, hidden_size=lm.hidden,
               ffn_hidden_size=lm.ffn, kv_channels=lm.head_dim, num_attention_heads=lm.heads,
               multi_query_group_num=lm.kv_heads, seq_length=lm.max_context, add_qkv_bias=lm.qkv_bias,
               rope_ratio=500 if lm.max_context == 131072 else 1)
    if spec.vision is not None:
        v = spec.vision
        out.update(GLM4V_TOKENS, vision_config=dict(
            hidden_size=v.hidden, num_heads=v.heads, intermediate_size=v.mlp, num_hidden_layers=v.layers,
            image_size=v.image_size, patch_size=v.patch_size, in_channels=v.in_channels,
            num_positions=v.position_embeddings, scaling_factor=8.0, layer_norm_eps=1e-6, dropout_prob=0.0,
            hidden_act="gelu"))
    return out


@dataclass(frozen=True)
class RemoteModel:
    slug: str
    files: tuple[SourceFile, ...]
    class_name: str
    # attention implementations the file's own code offers (CORE_ATTENTION_CLASSES), and the one
    # transformers 4.4x from_pretrained picks for it: the class sets _supports_sdpa = True, so
    # modeling_utils._autoset_attn_implementation -> _check_and_enable_sdpa chooses "sdpa" (torch >= 2.1.1);
    # a file without CORE_ATTENTION_CLASSES calls torch SDPA itself (CoreAttention.forward, torch >= 2).
    attn_implementations: tuple[str, ...]
    extract_past_returns_name: bool  # transformers >= 4.43 _extract_past_from_model_output returns (name, cache)
    shims: tuple[str, ...] = field(default=())
    # what config._attn_implementation holds for the code's attention: glm-4v-9b's class declares no
    # _supports_sdpa, so transformers sets "eager", and its CoreAttention calls torch SDPA regardless
    config_attn: dict[str, str] = field(default_factory=dict)


SHIM_NOTES = {
    "config": "configuration_chatglm.ChatGLMConfig: our PretrainedConfig with the upstream class's fields "
              "(app/measure/remote_code.py), filled from the released config.json values",
    "jit": "torch.jit.script disabled while the files import (as PYTORCH_JIT=0): apply_rotary_pos_emb runs as "
           "Python, op for op (TorchScript cannot run on fake tensors)",
    "extract_past": "_extract_past_from_model_output, removed from transformers 5: transformers 4.4x's body "
                    "(the output's past_key_values)",
    "mask": "attention_mask=None to forward: fake tensors hold no values for the file's `not attention_mask.all()` "
            "test; the tokenizer's all-ones mask takes the same branch (no mask, is_causal SDPA). generate()'s own "
            "mask tensor is still allocated and cat-grown",
    "tolist": "Tensor.tolist answers the prompt's token ids for the image branch's input_ids[i].tolist() (fake "
              "tensors hold no values; the driver knows the prompt it built: boi, pad, eoi)",
    "habana": "habana_frameworks stub: FusedSDPA.apply(q, k, v, None, 0.0, False, ...) -> "
              "torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=None, dropout_p=0., "
              "is_causal=False), upstream visual.py's call; ht.sdp_kernel -> no-op context",
    "embed_first": "ChatGLMModel.forward gets inputs_embeds = its own embedding(input_ids) (see the copy's note)",
    "init": "empty_init=False: torch's skip_init (meta, then to_empty) cannot swap parameters under fake "
            "tensors; the modules are built directly instead, the same parameters and dtypes",
    "tensor_type": "the file's `torch.Tensor` is FakeTensor (a Tensor subclass), so its "
                   "`type(presents) is torch.Tensor` check is true as it is for the real tensor; the file's only "
                   "runtime use of the name",
    "dtype": "built under torch.set_default_dtype(bfloat16), as from_pretrained(torch_dtype=torch.bfloat16) "
             "builds the modules (the vision tower's layers take the default dtype)",
}

REMOTE_MODELS: dict[str, RemoteModel] = {
    "glm-4v-9b": RemoteModel("glm-4v-9b", (GLM4V_MODELING, GLM4V_VISUAL), "ChatGLMForConditionalGeneration",
                             ("sdpa",), False,
                             ("config", "jit", "extract_past", "mask", "tolist", "habana", "init", "tensor_type",
                              "dtype"), {"sdpa": "eager"}),
    "glm-4-9b-chat": RemoteModel("glm-4-9b-chat", (GLM4_CHAT_MODELING,), "ChatGLMForConditionalGeneration",
                                 ("sdpa", "eager"), True,
                                 ("config", "jit", "extract_past", "mask", "embed_first", "init", "tensor_type",
                                  "dtype")),
}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _config_module(package: str) -> types.ModuleType:
    mod = types.ModuleType(f"{package}.configuration_chatglm")

    class ChatGLMConfig(transformers.PretrainedConfig):
        model_type = "chatglm"

        def __init__(self, **kwargs):
            fields = {k: kwargs.pop(k) for k in list(kwargs) if k in CHATGLM_FIELDS}
            for k, v in fields.items():
                setattr(self, k, v)
            self.vocab_size = fields.get("padded_vocab_size")
            self.max_length = kwargs.pop("max_length", 20)  # transformers 4.4x PretrainedConfig's generation default
            super().__init__(**kwargs)

    mod.ChatGLMConfig = ChatGLMConfig
    return mod


CHATGLM_FIELDS = {*CHATGLM_FLAGS, "num_layers", "padded_vocab_size", "hidden_size", "ffn_hidden_size", "kv_channels",
                  "num_attention_heads", "seq_length", "multi_query_group_num", "add_qkv_bias", "rope_ratio",
                  "boi_token_id", "eoi_token_id", "vision_config", "classifier_dropout", "bias_dropout_fusion"}


def _habana_stub() -> dict[str, types.ModuleType]:
    import torch.nn.functional as F

    class FusedSDPA:
        @staticmethod
        def apply(q, k, v, mask, dropout_p, is_causal, scale, softmax_mode):
            return F.scaled_dot_product_attention(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False)

    names = ["habana_frameworks", "habana_frameworks.torch", "habana_frameworks.torch.hpu",
             "habana_frameworks.torch.hpex", "habana_frameworks.torch.hpex.kernels"]
    mods = {n: types.ModuleType(n) for n in names}
    mods["habana_frameworks.torch.hpu"].sdp_kernel = lambda **kw: contextlib.nullcontext()
    mods["habana_frameworks.torch.hpex.kernels"].FusedSDPA = FusedSDPA
    mods["habana_frameworks"].torch = mods["habana_frameworks.torch"]
    mods["habana_frameworks.torch"].hpu = mods["habana_frameworks.torch.hpu"]
    mods["habana_frameworks.torch"].hpex = mods["habana_frameworks.torch.hpex"]
    mods["habana_frameworks.torch.hpex"].kernels = mods["habana_frameworks.torch.hpex.kernels"]
    return mods


def prepare(slug: str, code_dir: Path) -> types.ModuleType:
    """Check the copies in `code_dir` against REMOTE_MODELS and import modeling_chatglm under the shims.

    Raises:
        Untraceable: no remote code is registered for `slug`, or a file is missing or differs.
    """
    if slug not in REMOTE_MODELS:
        raise Untraceable(f"{slug}: no remote code registered (REMOTE_MODELS: {', '.join(REMOTE_MODELS)})")
    remote = REMOTE_MODELS[slug]
    for f in remote.files:
        path = code_dir / f.name
        if not path.is_file():
            raise Untraceable(f"{slug}: {path} missing; copy {f.repository} {f.path} at {f.commit} there")
        if (digest := sha256(path)) != f.sha256:
            raise Untraceable(f"{slug}: {path} has sha256 {digest}, not {f.sha256} ({f.repository}@{f.commit})")
    package = "vram_remote_" + slug.replace("-", "_").replace(".", "_")
    for name in [n for n in sys.modules if n == package or n.startswith(package + ".")]:
        del sys.modules[name]
    pkg = types.ModuleType(package)
    pkg.__path__ = [str(code_dir)]
    sys.modules[package] = pkg
    sys.modules[f"{package}.configuration_chatglm"] = _config_module(package)
    stubs = _habana_stub() if "habana" in remote.shims else {}
    saved = {n: sys.modules.get(n) for n in stubs}
    sys.modules.update(stubs)
    torch.jit._state.disable()
    try:
        with warnings.catch_warnings():  # torch 2.13 deprecates the file's @torch.jit.script
            warnings.simplefilter("ignore", DeprecationWarning)
            modeling = importlib.import_module(f"{package}.modeling_chatglm")
    finally:
        torch.jit._state.enable()
        for n, m in saved.items():
            if m is None:
                sys.modules.pop(n, None)
            else:
                sys.modules[n] = m
    _install_shims(modeling, remote)
    return modeling


class _FakeTensorType(types.ModuleType):
    """The modeling file's `torch`, but `torch.Tensor` is FakeTensor: its `type(presents) is torch.Tensor`
    (the prefill's one-tensor cache turned into per-layer (k, v) views) then holds for fake tensors too."""

    def __init__(self) -> None:
        super().__init__("torch")

    def __getattr__(self, name: str):
        return FakeTensor if name == "Tensor" else getattr(torch, name)


def _install_shims(modeling: types.ModuleType, remote: RemoteModel) -> None:
    cls = getattr(modeling, remote.class_name)

    def extract_past(self, outputs, standardize_cache_format: bool = False):
        past = getattr(outputs, "past_key_values", None)  # transformers 4.4x GenerationMixin body
        return ("past_key_values", past) if remote.extract_past_returns_name else past

    cls._extract_past_from_model_output = extract_past
    modeling.torch = _FakeTensorType()  # shim 'tensor_type'
    if "embed_first" in remote.shims:
        model_cls = modeling.ChatGLMModel
        forward = model_cls.forward

        def embed_first(self, input_ids, *args, inputs_embeds=None, **kwargs):
            if inputs_embeds is None:
                inputs_embeds = self.embedding(input_ids)
            return forward(self, input_ids, *args, inputs_embeds=inputs_embeds, **kwargs)

        model_cls.forward = embed_first


def build(modeling: types.ModuleType, spec: ModelSpec, attn_implementation: str) -> torch.nn.Module:
    """The class from_pretrained(trust_remote_code=True, torch_dtype=torch.bfloat16) builds; call inside
    the FakeTensorMode that will run it."""
    remote = REMOTE_MODELS[spec.slug]
    if attn_implementation not in remote.attn_implementations:
        raise Untraceable(f"{spec.slug}: its remote code offers {', '.join(remote.attn_implementations)}, "
                          f"not {attn_implementation}")
    config = modeling.ChatGLMConfig(**chatglm_config(spec), dtype=torch.bfloat16)
    config._attn_implementation = remote.config_attn.get(attn_implementation, attn_implementation)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        model = getattr(modeling, remote.class_name)(config, empty_init=False)  # shim 'init'
    finally:
        torch.set_default_dtype(previous)
    return model.eval()


@contextlib.contextmanager
def _prompt_values(prompts: dict[int, list[int]]) -> Iterator[None]:
    """Tensor.tolist for the fake prompt rows: their token ids (shim 'tolist')."""
    original = FakeTensor.tolist

    def tolist(self):
        if self.dim() == 1 and self.dtype == torch.long and len(self) in prompts:
            return list(prompts[len(self)])
        return original(self)

    FakeTensor.tolist = tolist
    try:
        yield
    finally:
        FakeTensor.tolist = original


def _storages(past) -> int:
    seen = {}
    for layer in past:
        for t in layer:
            for st in get_untyped_storages(t):
                seen[st._cdata] = st.nbytes()
    return sum(seen.values())


def generate_two_steps(model: torch.nn.Module, batch: int, context: int, images: int, tracker) -> Steps:
    """What transformers 4.4x generate() runs for this remote class: prompt of `context` tokens (with one
    image: the 3-token boi/pad/eoi placeholder the file replaces by the tower's 1602 embeddings)."""
    steps = Steps()
    ids = torch.zeros(batch, context, dtype=torch.long)
    kwargs: dict = {"attention_mask": torch.ones(batch, context, dtype=torch.long), "use_cache": True}
    prompts: dict[int, list[int]] = {}
    if images:
        v = model.config.vision_config
        kwargs["images"] = torch.zeros(batch, v["in_channels"], v["image_size"], v["image_size"])  # fp32
        prompts[context] = [0, model.config.boi_token_id, 0, model.config.eoi_token_id] + [0] * (context - 4)
    with _prompt_values(prompts):
        inputs = model.prepare_inputs_for_generation(ids, **kwargs)
        inputs["attention_mask"] = None  # shim 'mask'
        out = model(**inputs, return_dict=True)
    del inputs
    steps.kv_cache_bytes = _storages(out.past_key_values)
    steps.prefill_peak = _total(tracker.get_tracker_snapshot("peak"))
    kwargs = model._update_model_kwargs_for_generation(out, kwargs)
    next_logits = out.logits[:, -1, :].to(copy=True, dtype=torch.float32)
    next_tokens = torch.argmax(next_logits, dim=-1)
    ids = torch.cat([ids, next_tokens[:, None]], dim=-1)
    del out, next_logits
    tracker.reset_mod_stats()
    inputs = model.prepare_inputs_for_generation(ids, **kwargs)
    inputs["attention_mask"] = None
    model(**inputs, return_dict=True)
    return steps


def trace_row(model, spec: ModelSpec, context: int, batch: int, images: int, attn_implementation: str) -> TracedRow:
    t0 = time.perf_counter()
    tracker = PeakTracker()
    tracker.track_external(model)
    ops = _OpLog()
    with tracker, ops, torch.no_grad():
        params = _params(tracker.get_tracker_snapshot("current"))
        steps = generate_two_steps(model, batch, context, images, tracker)
    peak = _total(tracker.get_tracker_snapshot("peak"))
    return TracedRow(
        model=spec.slug, quantization="bf16", context=context, batch=batch, images=images,
        code="remote", architecture=type(model).__name__,
        attn_implementation=attn_implementation, attention_kernels=sorted(ops.seen),
        parameters_bytes=params, kv_cache_bytes=steps.kv_cache_bytes, peak_bytes=peak,
        prefill_peak_bytes=steps.prefill_peak, peak_phase="decode" if peak > steps.prefill_peak else "prefill",
        seconds=round(time.perf_counter() - t0, 2))


def trace(spec: ModelSpec, code_dir: Path, contexts: list[int], batches: list[int], images: list[int],
          attn_implementation: str = "sdpa", on_row: Callable[[TracedRow], None] | None = None) -> list[TracedRow]:
    modeling = prepare(spec.slug, code_dir)
    rows = []
    with FakeTensorMode():
        model = build(modeling, spec, attn_implementation)
        for n_images in images:
            for context in contexts:
                for batch in batches:
                    rows.append(trace_row(model, spec, context, batch, n_images, attn_implementation))
                    if on_row:
                        on_row(rows[-1])
    return rows
