"""Runs measurement cases: build once per model, then per case real inference (vision tower on a
1120x1120 input spliced into the prompt, then generate() with the model's DynamicCache)."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import torch
import transformers

from app.estimator.measurements import MeasuredCase
from app.estimator.params import count_parameters
from app.estimator.spec import ModelSpec
from app.measure.builders import DTYPES, build, parameter_count
from app.measure.probes import Probe

NEW_TOKENS = 8


@dataclass(frozen=True)
class Case:
    model: str
    quantization: str  # bf16 / fp16 / fp32: the harness builds float checkpoints
    context: int  # text tokens of the prompt (a prompt with an image holds its 3 placeholder tokens)
    images: int = 0
    batch: int = 1


def check_parameters(spec: ModelSpec, lm: torch.nn.Module, vision: torch.nn.Module | None) -> int:
    """The built model must have exactly the estimator's parameter count."""
    built = parameter_count(lm) + (parameter_count(vision) if vision is not None else 0)
    expected = count_parameters(spec).total
    if built != expected:
        raise AssertionError(f"{spec.slug}: built {built:,} parameters, the estimator counts {expected:,}")
    return built


def _prompt(spec: ModelSpec, lm, vision, case: Case, device) -> dict:
    g = torch.Generator(device="cpu").manual_seed(0)
    ids = torch.randint(0, spec.language_model.vocab, (case.batch, case.context), generator=g).to(device)
    if not case.images:
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    if vision is None or spec.vision is None:
        raise ValueError(f"{spec.slug} has no vision tower")
    if case.images != 1:
        raise ValueError("GLM-4V-9B takes one image per prompt")
    v = spec.vision
    dtype = next(lm.parameters()).dtype
    pixels = torch.randn(case.batch, v.in_channels, v.image_size, v.image_size, generator=g).to(device, dtype)
    images = vision(pixels)  # [batch, 1602, hidden]
    text = lm.get_input_embeddings()(ids)
    keep = v.prompt_tokens_per_image  # boi, pad, eoi placeholders replaced by the image embeddings
    embeds = torch.cat([text[:, :1], images, text[:, 1 + keep:]], dim=1)
    del pixels, images, text
    mask = torch.ones(embeds.shape[:2], dtype=torch.long, device=device)
    return {"inputs_embeds": embeds, "attention_mask": mask}


@torch.inference_mode()
def run_case(spec: ModelSpec, lm, vision, case: Case, probe: Probe, weights_bytes: int, device) -> MeasuredCase:
    probe.reset()
    inputs = _prompt(spec, lm, vision, case, device)
    lm.generate(**inputs, max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS, do_sample=False,
                pad_token_id=0, eos_token_id=None)
    del inputs
    stats = probe.stop()
    return MeasuredCase(model=case.model, quantization=case.quantization, context=case.context, images=case.images,
                        batch=case.batch, runtime="transformers", new_tokens=NEW_TOKENS, weights_bytes=weights_bytes,
                        **stats)


def run_model(spec: ModelSpec, cases: Iterable[Case], probe_for: Callable[[], Probe], device: str,
              log: Callable[[str], None] = print) -> list[MeasuredCase]:
    """One model, one build, every case (all cases must share the model's dtype)."""
    cases = list(cases)
    dtypes = {c.quantization for c in cases}
    if len(dtypes) != 1 or not dtypes <= set(DTYPES):
        raise ValueError(f"one float dtype per build, got {sorted(dtypes)}")
    probe = probe_for()
    t = time.perf_counter()
    lm, vision = build(spec, device, dtypes.pop())
    check_parameters(spec, lm, vision)
    weights = probe.allocated()
    log(f"{spec.slug}: built in {time.perf_counter() - t:.1f} s, {weights:,} bytes allocated")
    out = []
    for case in cases:
        t = time.perf_counter()
        try:
            measured = run_case(spec, lm, vision, case, probe, weights, device)
        except torch.OutOfMemoryError as exc:  # recorded in the log, not in the results
            probe.stop()
            log(f"  {case}: out of memory ({exc})")
            continue
        out.append(measured)
        log(f"  {case.quantization} ctx={case.context} img={case.images} batch={case.batch}: "
            f"peak allocated {measured.peak_allocated_bytes:,} reserved {measured.peak_reserved_bytes:,} "
            f"device {measured.device_used_bytes:,} ({time.perf_counter() - t:.1f} s)")
    return out


def versions(probe_device: dict) -> dict:
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                             cwd=Path(__file__).parent).stdout.strip() or "unknown"
    except OSError:
        rev = "unknown"
    return {**probe_device, "torch": torch.__version__, "transformers": transformers.__version__,
            "git_revision": rev}


def write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1) + "\n")
