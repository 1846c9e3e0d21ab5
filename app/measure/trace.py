"""Trace transformers' real model code on fake tensors: the allocated peak of what generate() runs first.

The class is built from a Hugging Face config under torch's FakeTensorMode (shapes, dtypes and devices,
no storage), then the two first steps of `generate()` run as generate() itself drives them:
prepare_inputs_for_generation -> forward with a DynamicCache, use_cache=True and logits_to_keep=1 (the
prefill), the fp32 copy of the last logits, _update_model_kwargs_for_generation, and one decode step.
`generate()` itself cannot run under fake tensors (its stopping criteria and all-ones mask check read
tensor values), so the steps are driven directly. torch.distributed._tools.mem_tracker.MemTracker follows
every allocation and free.

Device: fake tensors live on the CPU device. A CPU-only torch build cannot fake CUDA tensors far enough:
FakeTensorMode replaces the CUDA device guard only when a CUDA build has no device
(c10 ensureCUDADeviceGuardSet), so on this build indexing a fake 'cuda' tensor raises "PyTorch is not
linked with support for cuda devices". On the CPU device MemTracker counts exact tensor bytes (on 'cuda'
it would round each block up to 512 bytes, a few KiB here). SDPA dispatches its CPU flash kernel, which
allocates what CUDA's flash kernel allocates (the output and an fp32 logsumexp); the row records it.
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import torch
import transformers
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.distributed._tools.common_utils import get_untyped_storages
from torch.distributed._tools.mem_tracker import MemTracker
from torch.distributed._tools.mod_tracker import ModTracker
from torch.utils._python_dispatch import TorchDispatchMode

from app.catalog import SPECS_DIR
from app.estimator.spec import ModelSpec
from app.estimator.traces import TracedRow
from app.measure.builders import DTYPES, causal_lm_config

CONFIGS_DIR = SPECS_DIR / "configs"  # committed Hugging Face configs (catalog importer), when present

# Released only as remote code that transformers does not implement: never traced, said so instead.
REMOTE_CODE_ONLY = {
    "glm-4v-9b": "THUDM/glm-4v-9b loads only with trust_remote_code (ChatGLMForConditionalGeneration + "
                 "EVA2CLIPModel); transformers has no class for it, so its code cannot be traced here",
}
# Released as remote code (model_type chatglm) whose weights transformers also implements natively:
# traced as the native class, which is the code `from_pretrained` of the "-hf" conversion runs.
NATIVE_PORT = {
    "glm-4-9b": "GlmForCausalLM",
    "glm-4-9b-chat": "GlmForCausalLM",
    "glm-4-9b-chat-1m": "GlmForCausalLM",
}
# Config classes whose model casts modules with `.to(dtype)` inside __init__ (DeepseekV4: its norms, hyper-connections
# and compressor biases `.to(dtype=torch.float32)`, modeling_deepseek_v4.py). Under FakeTensorMode
# nn.Module._apply must swap a fake parameter (torch.utils.swap_tensors), which fails on a parameter the fake
# mode's MetaConverter memo holds a weakref to ("Cannot swap t1 because it has weakref associated with it",
# torch 2.13). These are built on the meta device and then given fake tensors of the same shapes and dtypes.
BUILD_ON_META = {"DeepseekV4Config"}
ATTENTION_OPS = ("scaled_dot_product", "flash_attention", "efficient_attention", "_softmax", "bmm")
# model_type -> the nested key a committed copy's top-level keys belong under, for copies that flatten the text
# model to the top (aiconfigurator's Step-3.7-Flash config.json): transformers' Step3p7Config reads text keys only
# under text_config and would otherwise build its defaults
FLATTENED_TEXT = {"step3p7": "text_config"}


def config_kwargs(data: dict) -> dict:
    """A committed config.json's keys (model_type left out) as its transformers configuration class takes them."""
    kw = {k: v for k, v in data.items() if k != "model_type"}
    nest = FLATTENED_TEXT.get(data.get("model_type"))  # type: ignore[arg-type]
    return {nest: kw} if nest is not None and nest not in data else kw


class Untraceable(Exception):
    """This model's code is not something the tracer can run; the message says why."""


def _text_config(lm) -> dict:
    return dict(vocab_size=lm.vocab, hidden_size=lm.hidden, intermediate_size=lm.ffn, num_hidden_layers=lm.layers,
                num_attention_heads=lm.heads, num_key_value_heads=lm.kv_heads, head_dim=lm.head_dim,
                max_position_embeddings=lm.max_context, attention_bias=lm.qkv_bias,
                tie_word_embeddings=lm.tied_embeddings)


def config_for(spec: ModelSpec, configs_dir: Path = CONFIGS_DIR) -> transformers.PretrainedConfig:
    """The Hugging Face config to build: the committed config.json when there is one, else one built from
    the spec the way app.measure.builders builds it.

    Raises:
        Untraceable: remote code transformers does not implement.
    """
    if spec.slug in REMOTE_CODE_ONLY:
        raise Untraceable(REMOTE_CODE_ONLY[spec.slug])
    path = configs_dir / spec.slug / "config.json"
    if path.exists() and spec.slug not in NATIVE_PORT:
        import json

        data = json.loads(path.read_text())
        model_type = data.get("model_type")
        if model_type not in transformers.CONFIG_MAPPING:
            raise Untraceable(f"{spec.hf_repo}: model_type {model_type!r} is remote code, not in transformers "
                              f"{transformers.__version__}")
        return transformers.AutoConfig.for_model(model_type, **config_kwargs(data))
    if spec.vision is not None:
        if "Glm4vForConditionalGeneration" not in spec.language_model.source:
            raise Untraceable(f"{spec.hf_repo}: no native transformers class is mapped for this vision model")
        # GLM-4.1V's text rotary: half of head_dim, multimodal sections 8/12/12 (zai-org/GLM-4.1V-9B-Thinking
        # config.json); the vision defaults of Glm4vVisionConfig are that model's tower.
        rope = {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [8, 12, 12],
                "partial_rotary_factor": 0.5}
        return transformers.Glm4vConfig(text_config={**_text_config(spec.language_model), "rope_parameters": rope})
    try:
        return causal_lm_config(spec.language_model)
    except NotImplementedError as exc:
        raise Untraceable(f"{spec.hf_repo}: {exc}") from None


def build_fake(config: transformers.PretrainedConfig, dtype: str,
               attn_implementation: str | None = None) -> torch.nn.Module:
    """The class `from_config` picks, with its default attention implementation (or the one named), on fake
    tensors. Call inside the FakeTensorMode that will run it."""
    import transformers.initialization as init

    autos = (transformers.AutoModelForCausalLM, transformers.AutoModelForImageTextToText)
    extra = {"attn_implementation": attn_implementation} if attn_implementation else {}
    for auto in autos:
        if type(config) in auto._model_mapping:
            if type(config).__name__ in BUILD_ON_META:
                from torch._subclasses.fake_tensor import unset_fake_temporarily

                with unset_fake_temporarily(), torch.device("meta"), init.no_init_weights():
                    model = auto.from_config(config, dtype=DTYPES[dtype], **extra)
                _fake_tensors(model)
                return model.eval()
            with init.no_init_weights():
                model = auto.from_config(config, dtype=DTYPES[dtype], **extra)
            model.tie_weights()  # post_init ties them, but no_init_weights skips that with the init
            return model.eval()
    raise Untraceable(f"no generative transformers class for {type(config).__name__}")


def _fake_tensors(model: torch.nn.Module) -> None:
    """Give every parameter and buffer of a meta-device model a fake (CPU) tensor of its shape and dtype, in
    place (the module dicts, no swap); a tensor shared by two modules stays shared. Call in FakeTensorMode."""
    made: dict[int, torch.Tensor] = {}
    for module in model.modules():
        for table, wrap in ((module._parameters, True), (module._buffers, False)):
            for name, t in table.items():
                if t is None:
                    continue
                if id(t) not in made:
                    fake = torch.empty(t.shape, dtype=t.dtype)
                    made[id(t)] = torch.nn.Parameter(fake, requires_grad=t.requires_grad) if wrap else fake
                table[name] = made[id(t)]


class _OpLog(TorchDispatchMode):
    """Names of the attention-related aten ops the trace dispatched."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: Counter[str] = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = str(func)
        if any(k in name for k in ATTENTION_OPS):
            self.seen[name.removeprefix("aten.").removesuffix(".default")] += 1
        return func(*args, **(kwargs or {}))


class _DistinctNames(ModTracker):
    """ModTracker that never gives two live modules the same name.

    torch 2.13.0's ModTracker names a module outside the tracked model by its class name alone
    (mod_tracker.py `_get_mod_name`). transformers 5.25.0 wraps functions such as apply_rotary_pos_emb in
    `kernels` 0.19's `Func` modules (`use_kernelized_func`, modeling_llama.py): a module-level `Func`
    calls the model's private `Func`, so "Func" is entered while "Func" is already a parent. ModTracker
    then warns "The module hierarchy tracking maybe be messed up" from its pre-forward hook; where warnings
    are errors (pytest here) the hook raises before MemTracker's own pre hook runs, and its always-called
    post hook fails with KeyError on the untracked module (`mem_tracker._post_fw_hook`). transformers
    5.24.0 called the plain function. A distinct name per module removes the false nesting; names never
    enter the byte counts."""

    def _get_mod_name(self, mod):
        if mod not in self._known_modules:
            name = type(mod).__name__
            if name in set(self._known_modules.values()):
                name = f"{name}@{id(mod):x}"
            self._known_modules[mod] = name
        return super()._get_mod_name(mod)


class KernelSafeMemTracker(MemTracker):
    """torch's MemTracker, unchanged but for module names (see _DistinctNames)."""

    def __init__(self) -> None:
        super().__init__()
        self._mod_tracker = _DistinctNames()


class PeakTracker(KernelSafeMemTracker):
    """MemTracker reporting the global peak only: its per-module peak snapshots walk every tracked module
    on every op (most of the trace's time) and nothing here reads them. The global peak is updated
    exactly as MemTracker._update_peak_stats does (tests/test_trace.py checks both agree)."""

    def _update_peak_stats(self, peak_state) -> None:
        for dev, snap in self._curr_mem_snap.items():
            if self._peak_mem.get(dev, 0) < snap["Total"]:
                self._peak_mem[dev] = snap["Total"]
                self._peak_mem_snap[dev] = dict(snap)


def _total(snapshot: dict) -> int:
    return sum(dev["Total"] for dev in snapshot.values())


def _params(snapshot: dict) -> int:
    from torch.distributed._tools.mem_tracker import _MemRefType

    return sum(dev[_MemRefType.PARAM] + dev[_MemRefType.BUFFER] for dev in snapshot.values())


def cache_bytes(cache) -> int:
    """Bytes of the distinct storages the cache's layers hold (a sliding-window layer may keep a view of a
    longer storage: the storage is what stays allocated)."""
    seen = {}
    for layer in cache.layers:
        for t in (getattr(layer, "keys", None), getattr(layer, "values", None)):
            if isinstance(t, torch.Tensor):
                for st in get_untyped_storages(t):
                    seen[st._cdata] = st.nbytes()
    return sum(seen.values())


@dataclass
class Steps:
    kv_cache_bytes: int = 0
    prefill_peak: int = 0
    ops: Counter = field(default_factory=Counter)


def generate_two_steps(model: torch.nn.Module, batch: int, context: int, tracker: MemTracker) -> Steps:
    """What generate() runs for a prompt of `context` tokens and one new token (greedy, no padding)."""
    from transformers.cache_utils import DynamicCache

    steps = Steps()
    ids = torch.zeros(batch, context, dtype=torch.long)
    mask = torch.ones(batch, context, dtype=torch.long)
    kwargs = {"attention_mask": mask, "use_cache": True}
    kwargs["position_ids"] = model._prepare_position_ids_for_generation(ids, kwargs)
    kwargs["attention_mask"] = None  # generate() drops an all-ones mask (no padding)
    del mask
    if model._supports_logits_to_keep():
        kwargs["logits_to_keep"] = 1
    kwargs["cache"] = DynamicCache(config=model.config.get_text_config(decoder=True))
    inputs = model.prepare_inputs_for_generation(ids, is_first_iteration=True, **kwargs)
    out = model(**inputs, return_dict=True)
    del inputs
    steps.kv_cache_bytes = cache_bytes(out.cache if "cache" in out else out.past_key_values)
    steps.prefill_peak = _total(tracker.get_tracker_snapshot("peak"))
    kwargs = model._update_model_kwargs_for_generation(out, kwargs)
    next_logits = out.logits[:, -1].to(copy=True, dtype=torch.float32)
    next_tokens = torch.argmax(next_logits, dim=-1)
    ids = torch.cat([ids, next_tokens[:, None]], dim=-1)
    del out, next_logits
    tracker.reset_mod_stats()  # MemTracker's per-module stats allow one call per module at a time
    inputs = model.prepare_inputs_for_generation(ids, next_sequence_length=1, **kwargs)
    model(**inputs, return_dict=True)
    return steps


def trace_row(model: torch.nn.Module, slug: str, dtype: str, context: int, batch: int,
              tracker_class: type[MemTracker] = PeakTracker, attn_label: str | None = None) -> TracedRow:
    """One traced row; call inside the FakeTensorMode that built `model` (`attn_label`: what to record as
    the attention implementation, when not the config's own)."""
    t0 = time.perf_counter()
    tracker = tracker_class()
    tracker.track_external(model)
    ops = _OpLog()
    with tracker, ops, torch.no_grad():
        params = _params(tracker.get_tracker_snapshot("current"))
        steps = generate_two_steps(model, batch, context, tracker)
    peak = _total(tracker.get_tracker_snapshot("peak"))
    return TracedRow(
        model=slug, quantization=dtype, context=context, batch=batch, architecture=type(model).__name__,
        attn_implementation=attn_label or model.config._attn_implementation, attention_kernels=sorted(ops.seen),
        parameters_bytes=params, kv_cache_bytes=steps.kv_cache_bytes, peak_bytes=peak,
        prefill_peak_bytes=steps.prefill_peak, peak_phase="decode" if peak > steps.prefill_peak else "prefill",
        seconds=round(time.perf_counter() - t0, 2),
    )


def trace_attention(spec: ModelSpec, contexts: list[int], batches: list[int], attn_implementation: str,
                    dtype: str = "bf16", configs_dir: Path = CONFIGS_DIR, on_row=None) -> list[TracedRow]:
    """The native class with the attention implementation named: eager, sdpa, or sdpa_math (SDPA held to
    torch's math kernel with torch.nn.attention.sdpa_kernel(SDPBackend.MATH), the kernel SDPA falls back
    to where no fused kernel takes the inputs)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    config = config_for(spec, configs_dir)
    impl = "sdpa" if attn_implementation == "sdpa_math" else attn_implementation
    kernel = sdpa_kernel(SDPBackend.MATH) if attn_implementation == "sdpa_math" else contextlib.nullcontext()
    rows = []
    with FakeTensorMode(), kernel:
        model = build_fake(config, dtype, impl)
        for context in contexts:
            for batch in batches:
                rows.append(trace_row(model, spec.slug, dtype, context, batch, attn_label=attn_implementation))
                if on_row:
                    on_row(rows[-1])
    return rows


# SDPA's math fallback (aten._safe_softmax + bmm): on this CPU the flash kernel refused the shapes (e.g. a
# value head dim unlike the query/key one); a CUDA GPU may pick a fused kernel, so the CPU trace would not
# describe it.
CPU_MATH_FALLBACK = "_safe_softmax"


def _refuse_cpu_only_kernel(row: TracedRow) -> None:
    if row.attn_implementation == "sdpa" and CPU_MATH_FALLBACK in row.attention_kernels:
        raise Untraceable(
            f"on the CPU, SDPA fell back to its math kernel ({', '.join(row.attention_kernels)}: quadratic "
            "[batch, heads, tokens, tokens] scores) where a CUDA GPU may use a fused kernel; the fake-tensor "
            "trace would not describe the GPU, so it is not committed")


def trace(spec: ModelSpec, contexts: list[int], batches: list[int], dtype: str = "bf16",
          configs_dir: Path = CONFIGS_DIR, on_row=None, row_budget_s: float | None = None) -> list[TracedRow]:
    """Build once, trace every context x batch (contexts in the order given). A row slower than
    `row_budget_s` stops the longer contexts (the caller lists them as skipped).

    Raises:
        Untraceable: before building, when the model's code cannot run here.
    """
    config = config_for(spec, configs_dir)
    rows = []
    with FakeTensorMode():
        model = build_fake(config, dtype)
        for context in contexts:
            for batch in batches:
                rows.append(trace_row(model, spec.slug, dtype, context, batch))
                _refuse_cpu_only_kernel(rows[-1])
                if on_row:
                    on_row(rows[-1])
            if row_budget_s is not None and any(r.seconds > row_budget_s for r in rows[-len(batches):]):
                break
    return rows
