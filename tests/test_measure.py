"""The measurement harness on the CPU: exact builders (full size on the meta device), the case runner
end to end on shrunken configs of the same shapes with CPU-side accounting, and the file format."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from app.catalog import SPECS_DIR, Catalog, load_catalog
from app.estimator import ModelSpec, count_parameters
from app.estimator.measurements import MeasurementFile

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from app.measure import __main__ as cli  # noqa: E402
from app.measure.builders import build, causal_lm_class, parameter_count  # noqa: E402
from app.measure.probes import CpuProbe  # noqa: E402
from app.measure.runner import Case, check_parameters, run_model  # noqa: E402


@pytest.mark.parametrize("slug", ["glm-4v-9b", "glm-4-9b-chat-1m", "glm-4-9b-0414", "glm-4-32b-0414", "llama-3.1-8b"])
def test_full_size_build_has_the_estimators_parameter_count(catalog: Catalog, slug: str):
    spec = catalog.model(slug)
    lm, vision = build(spec, "meta", "bf16")
    assert check_parameters(spec, lm, vision) == count_parameters(spec).total
    if vision is not None:
        assert parameter_count(vision) == 4_506_369_536


def test_language_model_classes(catalog: Catalog):
    assert causal_lm_class(catalog.model("glm-4v-9b").language_model) == "GlmForCausalLM"
    assert causal_lm_class(catalog.model("glm-z1-9b-0414").language_model) == "Glm4ForCausalLM"
    assert causal_lm_class(catalog.model("llama-3.1-8b").language_model) == "LlamaForCausalLM"


def shrink(spec: ModelSpec) -> ModelSpec:
    """Same architecture, tiny sizes: 2 layers, hidden 64, a 56x56 image (4x4 patches)."""
    lm = spec.language_model.model_copy(update=dict(layers=2, hidden=64, heads=4, kv_heads=2, head_dim=16, ffn=96,
                                                    vocab=512, max_context=4096))
    update = {"language_model": lm}
    if spec.vision is not None:
        h, f = lm.hidden, lm.ffn
        projector = [("conv.weight", (h, 32, 2, 2), "conv"), ("conv.bias", (h,), "bias"),
                     ("linear_proj.weight", (h, h), "linear"), ("norm1.weight", (h,), "norm"),
                     ("norm1.bias", (h,), "norm"), ("gate_proj.weight", (f, h), "linear"),
                     ("dense_h_to_4h.weight", (f, h), "linear"), ("dense_4h_to_h.weight", (h, f), "linear"),
                     ("boi", (1, 1, h), "embedding"), ("eoi", (1, 1, h), "embedding")]
        update["vision"] = spec.vision.model_copy(update=dict(
            layers=2, hidden=32, heads=2, mlp=64, image_size=56, position_embeddings=17, embeddings_per_image=6,
            projector=[type(spec.vision.projector[0])(name=n, shape=s, kind=k) for n, s, k in projector]))
    return spec.model_copy(update=update)


def test_case_runner_end_to_end_with_cpu_accounting(glm4v: ModelSpec):
    tiny = shrink(glm4v)
    todo = [Case("glm-4v-9b", "fp32", c, i, b) for c in (16, 64) for i in (0, 1) for b in (1, 2)]
    base = 4 * count_parameters(tiny).total
    measured = run_model(tiny, todo, lambda: CpuProbe(base), "cpu", log=lambda m: None)
    assert len(measured) == len(todo)
    by = {(m.context, m.images, m.batch): m for m in measured}
    for m in measured:
        assert m.weights_bytes == base and m.new_tokens == 8
        assert m.peak_allocated_bytes > m.weights_bytes
        assert m.device_used_bytes >= m.peak_allocated_bytes
    assert by[(64, 0, 1)].peak_allocated_bytes > by[(16, 0, 1)].peak_allocated_bytes
    assert by[(16, 1, 1)].peak_allocated_bytes > by[(16, 0, 1)].peak_allocated_bytes  # the vision pass
    assert by[(64, 0, 2)].peak_allocated_bytes > by[(64, 0, 1)].peak_allocated_bytes


def test_built_parameters_must_match(glm4v: ModelSpec):
    tiny = shrink(glm4v)
    lm, vision = build(tiny, "meta", "bf16")
    wrong = tiny.model_copy(update={"language_model": tiny.language_model.model_copy(update={"vocab": 513})})
    with pytest.raises(AssertionError, match="built"):
        check_parameters(wrong, lm, vision)


def test_cli_writes_a_part_and_the_file_format_round_trips(tmp_path: Path, catalog: Catalog):
    specs = tmp_path / "specs"
    shutil.copytree(SPECS_DIR, specs, ignore=shutil.ignore_patterns("measurements"))
    tiny = shrink(catalog.model("llama-3.1-8b"))
    (specs / "models" / "llama-3.1-8b.json").write_text(tiny.model_dump_json())
    out = tmp_path / "part.json"
    cli.main(["--model", "llama-3.1-8b", "--dtype", "fp32", "--context", "8", "32", "--batch", "1", "2",
              "--device", "cpu", "--specs", str(specs), "--out", str(out)])
    part = json.loads(out.read_text())
    assert part["device"]["name"].startswith("cpu") and part["device"]["git_revision"]
    assert len(part["cases"]) == 4
    run = MeasurementFile(device=part["device"], started_at="2026-11-29T00:00:00+00:00", duration_s=1.0,
                          log="cpu.log", cases=part["cases"])
    again = MeasurementFile.model_validate_json(run.model_dump_json())
    assert again == run and again.format == "vram-measurements/1"
    assert {"model", "quantization", "context", "images", "batch", "runtime", "weights_bytes",
            "peak_allocated_bytes", "peak_reserved_bytes", "device_used_bytes"} <= set(part["cases"][0])
    assert load_catalog(specs).model("llama-3.1-8b").language_model.layers == 2
