"""The 2026 families, transformers 5 key spellings, the generic reader and its refusals.

Parameter counts: transformers 5.25's own classes built on the meta device. Image tokens: transformers'
own image processors (Qwen2VLImageProcessor, PixtralImageProcessor) on real arrays of each size.
"""

from __future__ import annotations

import ast
import json
import math
from pathlib import Path

import pytest

from app.catalog import SPECS_DIR
from app.catalog.adapters import ARCHITECTURES
from app.catalog.adapters.generic import REFUSED
from app.catalog.importer import spec_from_config
from app.estimator import VramRequest, count_parameters, estimate
from app.estimator.errors import InvalidRequest, UnknownChoice
from app.estimator.images import image_grid
from tests.test_registry_transformers import transformers_kwargs

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

CONFIGS = SPECS_DIR / "configs"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "configs-2026"  # shared/ beside the clone


def _catalog(slug: str) -> dict:
    return json.loads((CONFIGS / slug / "config.json").read_text())


def _count(config: dict, cls: str, model_type: str | None = None, **override) -> int:
    kw = {k: v for k, v in config.items() if k != "model_type"} | override
    cfg = transformers.AutoConfig.for_model(model_type or config["model_type"], **kw)
    with torch.device("meta"):
        model = getattr(transformers, cls)(cfg)
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("model_type", sorted(t for t, a in ARCHITECTURES.items() if a.transformers_class))
def test_transformers_5_default_config_imports(model_type: str):
    """`XConfig().to_dict()` as transformers 5.25 writes it (num_local_experts, dtype, rope_parameters, ...)."""
    config = transformers.AutoConfig.for_model(model_type).to_dict()
    refused = {
        "deepseek_v2": "config.num_experts_per_tok",  # DeepseekV2Config's default is None: named, not guessed
        "lfm2_vl": "config.vision_config.vision_use_head",  # Lfm2VlConfig's default tower has a pooling head
    }
    if model_type in refused:
        with pytest.raises(InvalidRequest) as err:
            spec_from_config(config)
        assert err.value.field == refused[model_type]
        return
    spec = spec_from_config(config)
    assert count_parameters(spec).total == _count(config, ARCHITECTURES[model_type].transformers_class)


def test_qwen3_moe_transformers_5_spelling_reads_like_4():
    v5 = transformers.Qwen3MoeConfig().to_dict()
    assert "num_local_experts" in v5 and "num_experts" not in v5
    v4 = {k: v for k, v in v5.items() if k != "num_local_experts"} | {"num_experts": v5["num_local_experts"]}
    v4["torch_dtype"] = v4.pop("dtype")
    assert count_parameters(spec_from_config(v5)).total == count_parameters(spec_from_config(v4)).total


def test_ministral3_multimodal_equals_mistral3_class():
    config = _catalog("ministral-3-3b-instruct-2512")
    assert config["model_type"] == "ministral3" and "vision_config" in config
    ours = count_parameters(spec_from_config(config)).total
    assert ours == _count(config, "Mistral3ForConditionalGeneration", "mistral3")


def test_ministral3_text_equals_ministral3_class():
    config = transformers.AutoConfig.for_model("ministral3").to_dict()
    assert count_parameters(spec_from_config(config)).total == _count(config, "Ministral3ForCausalLM")


def test_kimi_k2_equals_deepseek_v3_class():
    """kimi_k2 is remote code whose config names DeepseekV3ForCausalLM: transformers' class of that name."""
    config = _catalog("kimi-k2-instruct")
    assert config["architectures"] == ["DeepseekV3ForCausalLM"]
    ours = count_parameters(spec_from_config(config)).total
    assert ours == _count(config, "DeepseekV3ForCausalLM", "deepseek_v3")
    assert round(ours / 1e12, 2) == 1.03  # Moonshot's card: "1 trillion total parameters"


@pytest.mark.skipif(not (SHARED / "magistral-small-2509").is_dir(), reason="shared configs not present")
def test_magistral_untied_unlike_transformers_5_default():
    """No tie_word_embeddings anywhere in Magistral-Small-2509's config (written by transformers 4.56, which
    took it from text_config's MistralConfig default: false). transformers 5's Mistral3Config defaults to
    true; we keep the released lm_head and equal transformers when the flag is stated."""
    config = json.loads((SHARED / "magistral-small-2509" / "config.json").read_text())
    ours = count_parameters(spec_from_config(config)).total
    assert ours == _count(config, "Mistral3ForConditionalGeneration", tie_word_embeddings=False)
    text = config["text_config"]
    assert ours - _count(config, "Mistral3ForConditionalGeneration") == text["vocab_size"] * text["hidden_size"]


@pytest.mark.parametrize(("slug", "cls"), [("minimax-m2.7", "MiniMaxM2ForCausalLM"),
                                           ("qwen3-vl-2b-instruct", "Qwen3VLForConditionalGeneration"),
                                           ("qwen3-vl-235b-a22b-instruct", "Qwen3VLMoeForConditionalGeneration"),
                                           ("glm-4.5-air", "Glm4MoeForCausalLM")])
def test_more_sizes_equal_transformers(slug: str, cls: str):
    config = _catalog(slug)
    assert count_parameters(spec_from_config(config)).total == _count(config, cls)


def test_olmo3_layer_types_equal_transformers():
    config = _catalog("olmo-3.1-32b-instruct")
    theirs = transformers.AutoConfig.for_model("olmo3", **{k: v for k, v in config.items()
                                                           if k != "model_type"}).layer_types
    assert spec_from_config(config).language_model.layer_types == tuple(
        "sliding" if t == "sliding_attention" else "full" for t in theirs)


SIZES = [(1024, 768), (640, 480), (1920, 1080), (4032, 3024), (300, 7000), (56, 56), (28, 200), (7000, 7000),
         (1540, 1541), (13, 17)]
MODELS = Path(transformers.__file__).parent / "models"


def _transformers_functions(path: Path, names: set[str], namespace: dict) -> dict:
    """Functions of a transformers 5.25 image-processor module, compiled from its own source file.

    The modules import torchvision / PIL at the top (not installed here); the functions themselves are
    plain arithmetic, so they are taken from the file as written and run unchanged.
    """
    tree = ast.parse(path.read_text())
    body = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name in names]
    assert {n.name for n in body} == names
    exec(compile(ast.Module(body, []), str(path), "exec"), namespace)  # noqa: S102
    return namespace


def _class_defaults(path: Path, name: str) -> dict:
    """Arithmetic class attributes (size = {...}, patch_size = 14) of a class in a transformers source file."""
    cls = next(n for n in ast.parse(path.read_text()).body if isinstance(n, ast.ClassDef) and n.name == name)
    out = {}
    for node in cls.body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            try:
                out[node.targets[0].id] = eval(compile(ast.Expression(node.value), str(path), "eval"),  # noqa: S307
                                               {"__builtins__": {}})
            except NameError:
                continue
    return out


@pytest.mark.parametrize("slug", ["qwen2.5-vl-7b-instruct", "qwen3-vl-8b-instruct"])
@pytest.mark.parametrize(("width", "height"), SIZES)
def test_qwen_image_tokens_equal_transformers_processor(slug: str, width: int, height: int):
    ns = _transformers_functions(MODELS / "qwen2_vl" / "image_processing_qwen2_vl.py", {"smart_resize"},
                                 {"math": math})
    v = spec_from_config(_catalog(slug)).vision
    h, w = ns["smart_resize"](height, width, factor=v.patch_size * v.merge_size, min_pixels=v.min_pixels,
                              max_pixels=v.max_pixels)
    grid_h, grid_w = h // v.patch_size, w // v.patch_size  # Qwen2VLImageProcessor: image_grid_thw = [1, h/p, w/p]
    patches, tokens, _ = image_grid(v, width, height)
    assert patches == grid_h * grid_w
    assert tokens == grid_h * grid_w // v.merge_size ** 2  # Qwen2VLProcessor: image_grid_thw.prod() // merge**2


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_glm4v_image_tokens_equal_transformers_processor(width: int, height: int):
    ns = _transformers_functions(MODELS / "glm4v" / "image_processing_glm4v.py", {"smart_resize"}, {"math": math})
    v = spec_from_config(transformers.Glm4vConfig().to_dict()).vision
    defaults = _class_defaults(MODELS / "glm4v" / "image_processing_glm4v.py", "Glm4vImageProcessor")
    assert (v.min_pixels, v.max_pixels) == (defaults["size"]["shortest_edge"], defaults["size"]["longest_edge"])
    assert (v.patch_size, v.merge_size, v.temporal_patch) == (defaults["patch_size"], defaults["merge_size"],
                                                               defaults["temporal_patch_size"])
    t = v.temporal_patch  # Glm4vImageProcessor.resize: num_frames = temporal_factor = temporal_patch_size
    h, w = ns["smart_resize"](num_frames=t, height=height, width=width, temporal_factor=t,
                              factor=v.patch_size * v.merge_size, min_pixels=v.min_pixels, max_pixels=v.max_pixels)
    patches, tokens, _ = image_grid(v, width, height)
    assert patches == (h // v.patch_size) * (w // v.patch_size)
    assert tokens == patches // v.merge_size ** 2  # Glm4vProcessor: image_grid_thw.prod() // merge_length


def _kimi_k25() -> dict:
    return _catalog("kimi-k2.5")


def test_kimi_k25_equals_transformers_class():
    """transformers 5.25 Kimi_K25ForConditionalGeneration; the released text_config says model_type kimi_k2
    (remote code), which transformers does not know: given to it as deepseek_v3 (its architectures)."""
    config = _kimi_k25()
    assert config["text_config"]["architectures"] == ["DeepseekV3ForCausalLM"]
    text = dict(config["text_config"], model_type="deepseek_v3")
    ours = count_parameters(spec_from_config(config))
    assert ours.total == _count(config, "Kimi_K25ForConditionalGeneration", text_config=text)


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_kimi_k25_image_tokens_equal_transformers_processor(width: int, height: int):
    path = MODELS / "kimi_k25" / "image_processing_kimi_k25.py"
    ns = _transformers_functions(path, {"navit_resize"}, {"math": math})
    defaults = _class_defaults(path, "Kimi_K25ImageProcessor")
    v = spec_from_config(_kimi_k25()).vision
    assert (v.patch_size, v.merge_size, v.max_patches) == (defaults["patch_size"], defaults["merge_size"],
                                                           defaults["max_patches"])
    side = defaults["size"]["max_height"]
    _, (h, w) = ns["navit_resize"](height, width, patch_size=v.patch_size, merge_kernel_size=v.merge_size,
                                   max_patches=v.max_patches, max_size_per_side=side)
    patches, tokens, _ = image_grid(v, width, height)
    assert patches == (h // v.patch_size) * (w // v.patch_size)  # get_number_of_image_patches
    assert tokens == patches // v.merge_size ** 2


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_pixtral_image_tokens_equal_transformers_processor(width: int, height: int):
    np = pytest.importorskip("numpy")
    ns = _transformers_functions(MODELS / "pixtral" / "image_processing_pixtral.py",
                                 {"get_resize_output_image_size", "_num_image_tokens"},
                                 {"math": math, "ImageInput": object, "ChannelDimension": str,
                                  "get_image_size": lambda image, fmt=None: image.shape[:2]})
    v = spec_from_config(_catalog("devstral-small-2-24b-instruct-2512")).vision
    unit = v.patch_size * v.merge_size  # PixtralProcessor passes patch_size x spatial_merge_size
    h, w = ns["get_resize_output_image_size"](np.zeros((height, width, 3), dtype=np.uint8),
                                              size=(v.longest_edge, v.longest_edge), patch_size=(unit, unit))
    rows, cols = h // unit, w // unit  # processing_pixtral.py: [IMG] x cols + [IMG_BREAK] per row, last [IMG_END]
    patches, tokens, _ = image_grid(v, width, height)
    assert tokens == rows * (cols + 1)
    assert patches == (h // v.patch_size) * (w // v.patch_size)


def test_image_size_changes_kv_positions_and_is_stated():
    spec = spec_from_config(_catalog("qwen3-vl-8b-instruct"))
    a = estimate(spec, VramRequest(model=spec.slug, images=1, image_size="640x480"))
    b = estimate(spec, VramRequest(model=spec.slug, images=1))
    _, tokens, _ = image_grid(spec.vision, 640, 480)
    assert a.detail.image_positions == tokens and any(x.startswith("images: 640x480 ") for x in a.assumptions)
    assert any(x.startswith("images: 1024x768 (the default") for x in b.assumptions)
    assert a.detail.image_positions < b.detail.image_positions


@pytest.mark.parametrize("bad", ["1024", "0x10", "10x", "axb", "100000x100", "1x300"])
def test_bad_image_size_is_a_422_naming_it(bad: str):
    spec = spec_from_config(_catalog("qwen2.5-vl-7b-instruct"))
    with pytest.raises(InvalidRequest) as err:
        estimate(spec, VramRequest(model=spec.slug, images=1, image_size=bad))
    assert err.value.field == "image_size"


def test_generic_reader_equals_llama_and_says_so():
    config = _catalog("llama-3.1-8b-instruct") | {"model_type": "acme_llama_clone"}
    spec = spec_from_config(config)
    assert spec.language_model.generic and "not checked" in spec.language_model.generic
    assert count_parameters(spec).total == _count(_catalog("llama-3.1-8b-instruct"), "LlamaForCausalLM")
    est = estimate(spec, VramRequest(model=spec.slug))
    assert any(w.startswith("generic: this architecture is not checked") for w in est.warnings)
    assert any("assumed" in a for a in est.assumptions)
    assert any("not checked" in p for p in spec.card.description)


def test_generic_moe_equals_mixtral():
    config = _catalog("mixtral-8x7b-v0.1") | {"model_type": "acme_moe"}
    spec = spec_from_config(config)
    assert count_parameters(spec).total == _count(_catalog("mixtral-8x7b-v0.1"), "MixtralForCausalLM")


@pytest.mark.parametrize(("key", "value"), [("kv_lora_rank", 512), ("vision_config", {"depth": 2}),
                                            ("hybrid_override_pattern", "M*M*"), ("n_shared_experts", 1)])
def test_generic_refuses_what_it_cannot_express(key: str, value):
    config = _catalog("llama-3.1-8b-instruct") | {"model_type": "acme", key: value}
    with pytest.raises(InvalidRequest) as err:
        spec_from_config(config)
    assert err.value.field == f"config.{key}"


def test_generic_missing_key_is_named():
    config = {k: v for k, v in _catalog("llama-3.1-8b-instruct").items() if k != "intermediate_size"}
    with pytest.raises(InvalidRequest) as err:
        spec_from_config(config | {"model_type": "acme"})
    assert err.value.field == "config.intermediate_size"


@pytest.mark.parametrize("model_type", ["deepseek_v4", "minimax_m3", "kimi_k3", "mimo_v2_flash", "step3p7",
                                        "gemma3n"])
def test_known_unexpressible_types_are_refused_with_a_reason(model_type: str):
    if model_type in ARCHITECTURES:
        pytest.skip("an adapter handles it now")
    config = _catalog("llama-3.1-8b-instruct") | {"model_type": model_type}
    with pytest.raises(InvalidRequest) as err:
        spec_from_config(config)
    assert err.value.field == "config.model_type" and REFUSED[model_type] in str(err.value)


def test_only_model_type_still_lists_supported_types():
    with pytest.raises(UnknownChoice):
        spec_from_config({"model_type": "acme"})


def test_many_image_sizes_keep_the_caches_bounded():
    from app.estimator import images
    from app.estimator.params import model_tensors

    spec = spec_from_config(_catalog("qwen2.5-vl-7b-instruct"))
    copies = [images.sized(spec, 100 + i, 300) for i in range(images.SIZED_CACHE + 20)]
    assert len(images._SIZED) <= images.SIZED_CACHE
    assert model_tensors(copies[-1]) is model_tensors(spec)  # memoized as the base: same weights
    assert copies[-1].vision.embeddings_per_image != copies[0].vision.embeddings_per_image


@pytest.mark.parametrize("slug", sorted(p.name for p in CONFIGS.iterdir() if (p / "config.json").is_file()))
def test_catalog_config_rewritten_by_transformers_5_reads_the_same(slug: str):
    """Each committed config as transformers 5 would save it (`XConfig(**config).to_dict()`: dtype,
    rope_parameters, num_local_experts, layer_types ...) gives the same spec, field for field."""
    config = _catalog(slug)
    model_type = config["model_type"]
    if not ARCHITECTURES[model_type].transformers_class or model_type == "ministral3":
        pytest.skip("no transformers configuration class of this model_type for this config")
    v5 = transformers.AutoConfig.for_model(model_type, **transformers_kwargs(config)).to_dict()
    skip = {"source", "field_sources"}
    ours, theirs = spec_from_config(config), spec_from_config(v5)
    assert ours.language_model.model_dump(exclude=skip) == theirs.language_model.model_dump(exclude=skip)
    if ours.vision is not None:
        assert ours.vision.model_dump(exclude=skip) == theirs.vision.model_dump(exclude=skip)


def test_image_size_through_every_door(client):
    """JSON body, query string, form and CLI option: the same answer, and the same 422 naming the field."""
    from typer.testing import CliRunner

    from app.cli import cli

    state = {"model": "qwen2.5-vl-7b-instruct", "images": 1, "image_size": "1280x720"}
    by_json = client.post("/api/vram", json=state).json()
    by_query = client.get("/api/vram", params=state).json()
    by_form = client.post("/api/vram", data={k: str(v) for k, v in state.items()}).json()
    assert by_json == by_query == by_form
    spec = spec_from_config(_catalog("qwen2.5-vl-7b-instruct"))
    assert by_json["detail"]["image_positions"] == image_grid(spec.vision, 1280, 720)[1]
    run = CliRunner().invoke(cli, ["estimate", "qwen2.5-vl-7b-instruct", "--images", "1", "--image-size",
                                   "1280x720", "--json"], env={"COLUMNS": "200"})
    assert run.exit_code == 0 and json.loads(run.stdout)["detail"] == by_json["detail"]
    bad = {**state, "image_size": "wide"}
    for r in (client.post("/api/vram", json=bad), client.get("/api/vram", params=bad),
              client.post("/api/vram", data={k: str(v) for k, v in bad.items()})):
        assert r.status_code == 422 and "image_size" in r.text
    run = CliRunner().invoke(cli, ["estimate", "qwen2.5-vl-7b-instruct", "--image-size", "wide"])
    assert run.exit_code == 2 and "image_size" in run.output


def test_generic_answer_on_the_model_page(client):
    config = _catalog("llama-3.1-8b-instruct") | {"model_type": "acme_llama_clone"}
    r = client.post("/api/vram", json={"config": config})
    assert r.status_code == 200
    assert r.json()["warnings"][-1].startswith("generic: this architecture is not checked")
    page = client.post("/api/vram", json={"config": config}, headers={"HX-Request": "true"})  # the page's fragment
    assert page.status_code == 200 and "generic: this architecture is not checked" in page.text


# --- Gemma 4: per-layer KV geometry, KV sharing, per-layer embeddings, MoE beside the MLP, vision -------------
def _gemma4_text_count(**kw) -> tuple[int, int]:
    """(ours, transformers 5.25 Gemma4ForCausalLM) for Gemma4TextConfig(**kw), read from the config as given and
    as transformers 5 writes it back (per_layer_config)."""
    base = {k: v for k, v in transformers.Gemma4TextConfig().to_dict().items()
            if k not in ("layer_types", "per_layer_config")}
    theirs = _count({**base, **kw}, "Gemma4ForCausalLM")
    written = transformers.Gemma4TextConfig(**{k: v for k, v in {**base, **kw}.items() if k != "model_type"}).to_dict()
    ours = count_parameters(spec_from_config({**base, **kw})).total
    assert count_parameters(spec_from_config(written)).total == ours
    return ours, theirs


@pytest.mark.parametrize("kw", [
    {"num_kv_shared_layers": 10},  # E2B/E4B style: the last 10 layers read earlier caches, no k/v projections
    {"num_kv_shared_layers": 20, "attention_k_eq_v": True, "num_global_key_value_heads": 1,
     "hidden_size_per_layer_input": 0},
    {"global_head_dim": 384},
    {"enable_moe_block": True, "num_experts": 8, "top_k_experts": 2, "moe_intermediate_size": 256},
])
def test_gemma4_text_variants_equal_transformers(kw: dict):
    ours, theirs = _gemma4_text_count(**kw)
    assert ours == theirs


@pytest.mark.skipif(not (SHARED / "gemma-4-31b-it-nvfp4").is_dir(), reason="shared configs not present")
def test_gemma4_31b_architecture_equals_transformers_and_nvfp4_is_read():
    """nvidia/Gemma-4-31B-IT-NVFP4 carries google/gemma-4-31B-it's architecture keys; its ModelOpt NVFP4
    quantization_config is read (format nvfp4, attention left in bf16 by its ignore list) and changes no count."""
    config = json.loads((SHARED / "gemma-4-31b-it-nvfp4" / "config.json").read_text())
    quantized = spec_from_config(config)
    assert quantized.default_format == "nvfp4"
    assert quantized.language_model.stored_schemes["blk.*.attn_q.weight"] == "unquantized"
    config.pop("quantization_config")
    spec = spec_from_config(config)
    assert count_parameters(spec).total == _count(config, "Gemma4ForConditionalGeneration")
    assert count_parameters(quantized) == count_parameters(spec)
    full = spec.language_model.kv_geometry["full"]
    assert (full.kv_heads, full.head_dim, full.v_from_k) == (4, 512, True)


def test_gemma4_default_vision_tower_equals_transformers():
    config = transformers.Gemma4Config(vision_config={}).to_dict()
    spec = spec_from_config(config)
    assert spec.vision is not None
    assert count_parameters(spec).total == _count(config, "Gemma4ForConditionalGeneration")


def test_gemma4_kv_shared_layers_own_no_cache():
    """Which layers share: transformers' Gemma4TextConfig.kv_sharing_modes ('reuse' layers own no cache)."""
    from app.estimator.cache import layer_caches

    cfg = transformers.Gemma4TextConfig(num_kv_shared_layers=10)
    modes = cfg.kv_sharing_modes
    lm = spec_from_config(cfg.to_dict()).language_model
    assert [x.kind == "shared" for x in layer_caches(lm)] == [m == "reuse" for m in modes]


def test_gemma4_audio_tower_is_refused():
    with pytest.raises(InvalidRequest) as err:
        spec_from_config({**transformers.Gemma4Config().to_dict(), "audio_config": {}})
    assert err.value.field == "config.audio_config"


# --- Llama 4: chunked attention, interleaved MoE with a shared expert, vision tower -------------------------
@pytest.mark.skipif(not (SHARED / "llama-4-maverick-17b-128e-instruct").is_dir(), reason="shared configs not present")
def test_llama4_maverick_text_equals_transformers():
    """The public Maverick copy is trimmed to text_config (no vision_config): its decoder against
    Llama4ForCausalLM. MoE every 2nd layer (interleave_moe_layer_step 2), dense layers intermediate_size_mlp."""
    config = json.loads((SHARED / "llama-4-maverick-17b-128e-instruct" / "config.json").read_text())["text_config"]
    spec = spec_from_config(config)
    assert count_parameters(spec).total == _count(config, "Llama4ForCausalLM")
    theirs = transformers.AutoConfig.for_model("llama4_text", **{k: v for k, v in config.items()
                                                                 if k != "model_type"})
    lm = spec.language_model
    assert [i for i, f in enumerate(lm.layer_ffn) if f == "moe"] == theirs.moe_layers


@pytest.mark.parametrize("kw", [{"moe_layers": [0, 5, 9], "num_hidden_layers": 10},
                                {"no_rope_layers": [1, 0] * 24, "interleave_moe_layer_step": 3},
                                {"attention_chunk_size": None}])
def test_llama4_text_variants_equal_transformers(kw: dict):
    base = {k: v for k, v in transformers.Llama4TextConfig().to_dict().items()
            if k not in ("layer_types", "no_rope_layers", "moe_layers")}
    config = {**base, **kw}
    spec = spec_from_config(config)
    assert count_parameters(spec).total == _count(config, "Llama4ForCausalLM")
    theirs = transformers.AutoConfig.for_model("llama4_text", **{k: v for k, v in config.items()
                                                                 if k != "model_type"}).layer_types
    assert spec.language_model.layer_types == tuple(t.replace("_attention", "") for t in theirs)


# --- DeepSeek-V3.2: MLA + the DSA indexer (weights and a per-token key cache in every layer) --------------
def test_deepseek_v32_indexer_weights_and_keys_follow_transformers():
    """Indexer parameters: transformers' DeepseekV32Indexer modules on the meta device, layer 0; its cached key
    is one index_head_dim head per token (DynamicIndexedLayer.indexer_keys [batch, seq, index_head_dim])."""
    from app.estimator.cache import layer_caches

    config = _catalog("deepseek-v3.2")
    cfg = transformers.AutoConfig.for_model("deepseek_v32", **{k: v for k, v in config.items()
                                                               if k not in ("model_type", "quantization_config")})
    with torch.device("meta"):
        indexer = transformers.models.deepseek_v32.modeling_deepseek_v32.DeepseekV32Indexer(cfg, 0)
    theirs = sum(p.numel() for p in indexer.parameters())
    spec = spec_from_config(config)
    from app.estimator.params import model_tensors

    ours = sum(t.numel for t in model_tensors(spec) if t.layer == 0 and ".indexer." in t.name)
    assert ours == theirs
    index_rows = [r for r in layer_caches(spec.language_model)[0].rows if r.name == "index"]
    assert [r.elements for r in index_rows] == [cfg.index_head_dim]


# --- GLM-5 (glm_moe_dsa): the indexer only on "full" layers; GLM-4.7-Flash (glm4_moe_lite) --------------------
@pytest.mark.parametrize("kw", [{"index_topk_freq": 4, "index_skip_topk_offset": 3},
                                {"index_topk_pattern": "FFSS" * 19 + "FS"}, {}])
def test_glm_moe_dsa_indexer_layers_equal_transformers(kw: dict):
    """Which layers run their own indexer: GlmMoeDsaConfig.indexer_types as transformers resolves it; the
    parameter count of GlmMoeDsaForCausalLM (shared layers build no indexer)."""
    base = {k: v for k, v in transformers.GlmMoeDsaConfig().to_dict().items() if k != "indexer_types"}
    config = {**base, **kw}
    theirs = transformers.AutoConfig.for_model("glm_moe_dsa", **kw).indexer_types
    spec = spec_from_config(config)
    assert spec.language_model.indexer.shared_layers == tuple(i for i, t in enumerate(theirs) if t == "shared")
    assert count_parameters(spec).total == _count(config, "GlmMoeDsaForCausalLM")


@pytest.mark.parametrize("slug", ["glm-5", "glm-5.2"])
def test_glm5_catalog_equals_transformers(slug: str):
    config = _catalog(slug)
    assert count_parameters(spec_from_config(config)).total == _count(config, "GlmMoeDsaForCausalLM")


@pytest.mark.parametrize("kw", [{"mlp_layer_types": ["dense"] * 3 + ["sparse"] * 44}, {"q_lora_rank": 1024}])
def test_glm4_moe_lite_variants_equal_transformers(kw: dict):
    config = {**transformers.Glm4MoeLiteConfig().to_dict(), **kw}
    assert count_parameters(spec_from_config(config)).total == _count(config, "Glm4MoeLiteForCausalLM")


# --- MiMo-V2-Flash: sliding layers with twice the KV heads, K and V head dims apart, sinks on sliding layers --
def test_mimo_v2_flash_layers_and_window_follow_transformers():
    config = _catalog("mimo-v2-flash")
    theirs = transformers.AutoConfig.for_model("mimo_v2_flash", **{k: v for k, v in config.items()
                                                                   if k not in ("model_type", "quantization_config")})
    lm = spec_from_config(config).language_model
    assert lm.layer_types == tuple(t.replace("_attention", "") for t in theirs.layer_types)
    assert lm.sliding_window == theirs.sliding_window  # sliding_window_size + 1
    assert lm.layer_ffn == tuple("moe" if t == "sparse" else "dense" for t in theirs.mlp_layer_types)
    swa = lm.kv_geometry["sliding"]
    assert (swa.kv_heads, swa.head_dim, swa.v_head_dim) == (2 * theirs.num_key_value_heads, theirs.head_dim,
                                                          theirs.v_head_dim)


@pytest.mark.parametrize("kw", [{"num_hidden_layers": 8, "num_key_value_heads": 8}, {"v_head_dim": 96}])
def test_mimo_v2_flash_variants_equal_transformers(kw: dict):
    config = {**transformers.MiMoV2FlashConfig().to_dict(), **kw}
    config.pop("layer_types"), config.pop("mlp_layer_types")
    assert count_parameters(spec_from_config(config)).total == _count(config, "MiMoV2FlashForCausalLM")


# --- Step-3.7-Flash: per-head output gate, sliding layers' own query heads, dense-then-MoE, StepFun's vision tower --
def _step37() -> dict:
    return _catalog("step-3.7-flash")


def _step37_released() -> dict:
    """The nested layout aiconfigurator's tests describe for the published checkpoint (text_config with
    attention_other_setting, layer_types padded with the 3 MTP layers, moe_layers_enum), built from the
    catalog copy's own values; the vision tower in the remote-code spellings (width / layers / heads)."""
    flat = _step37()
    text = {k: v for k, v in flat.items() if k not in ("architectures", "first_k_dense_replace", "num_experts")}
    text |= {"model_type": "step3p5", "layer_types": flat["layer_types"] + ["full_attention"] * 3,
             "moe_layers_enum": ",".join(str(i) for i in range(3, 48)), "moe_num_experts": flat["num_experts"],
             "attention_other_setting": {"num_attention_heads": 96, "num_attention_groups": 8, "head_dim": 128}}
    return {"model_type": "step3p7", "architectures": ["Step3p7ForConditionalGeneration"], "text_config": text,
            "vision_config": {"width": 1536, "layers": 47, "heads": 16, "image_size": 728, "patch_size": 14}}


def test_step37_flat_copy_reads_as_transformers_text_config():
    """The catalog copy's top-level keys, given to transformers as text_config: the same layers, experts, MoE
    layers and window as we read, and the same parameter count (vision tower: Step3p7VisionConfig defaults)."""
    config = _step37()
    theirs = transformers.AutoConfig.for_model("step3p7", **transformers_kwargs(config)).text_config
    spec = spec_from_config(config)
    lm = spec.language_model
    assert theirs.n_routed_experts == lm.moe.experts == config["num_experts"]
    assert lm.layer_ffn == tuple("moe" if t == "sparse" else "dense" for t in theirs.mlp_layer_types)
    assert lm.layer_types == tuple(t.replace("_attention", "") for t in theirs.layer_types)
    assert (lm.sliding_window, lm.vocab) == (theirs.sliding_window, theirs.vocab_size)
    assert {theirs.per_layer_config[i].num_attention_heads for i in range(45)} == {lm.heads}
    assert count_parameters(spec).total == _count(config, "Step3p7ForConditionalGeneration",
                                                  **transformers_kwargs(config))


def test_step37_released_layout_equals_transformers():
    """96 query heads on sliding layers (per_layer_config), MTP entries split off, MoE layers from
    moe_layers_enum: Step3p7ForConditionalGeneration's count, from the config and as transformers 5 writes it."""
    config = _step37_released()
    cfg = transformers.AutoConfig.for_model("step3p7", text_config=dict(config["text_config"]),
                                            vision_config=dict(config["vision_config"]))
    with torch.device("meta"):
        model = transformers.Step3p7ForConditionalGeneration(cfg)
    theirs = sum(p.numel() for p in model.parameters())
    spec = spec_from_config(config)
    assert count_parameters(spec).total == theirs
    assert count_parameters(spec_from_config(cfg.to_dict())).total == theirs
    swa = spec.language_model.kv_geometry["sliding"]
    assert (swa.heads, swa.kv_heads, swa.head_dim) == (cfg.text_config.per_layer_config[1].num_attention_heads,
                                                       cfg.text_config.num_key_value_heads, cfg.text_config.head_dim)
    assert spec.language_model.layer_types == tuple(t.replace("_attention", "") for t in cfg.text_config.layer_types)


@pytest.mark.parametrize("kw", [{"num_sliding_attention_heads": 32}, {"attention_bias": True},
                                {"mlp_layer_types": ["dense"] * 5 + ["sparse"] * 40},
                                {"num_hidden_layers": 6, "layer_types": None, "vocab_size": 1000}])
def test_step37_text_variants_equal_transformers(kw: dict):
    text = {k: v for k, v in _step37().items() if k != "model_type"} | kw
    text = {k: v for k, v in text.items() if v is not None}
    config = {"model_type": "step3p7", "text_config": text, "projector_bias": True}
    assert count_parameters(spec_from_config(config)).total == _count(config, "Step3p7ForConditionalGeneration")


@pytest.mark.parametrize(("key", "value"), [("first_k_dense_replace", 5), ("num_experts", 128),
                                            ("n_shared_experts", 2),
                                            ("attention_other_setting", {"num_attention_heads": 96, "head_dim": 64})])
def test_step37_refuses_what_transformers_would_build_differently(key: str, value):
    """Keys transformers' Step3p7TextConfig ignores (first_k_dense_replace, num_experts, n_shared_experts, the
    KV part of attention_other_setting): a value other than what it builds is a 422 naming the key."""
    with pytest.raises(InvalidRequest) as err:
        spec_from_config(_step37() | {key: value})
    assert err.value.field.startswith(f"config.{key}")


def _step37_processor() -> tuple[object, type]:
    """transformers 5.25's Step3p7ImageProcessor._plan_patches (and _is_extreme_aspect) on a class holding the
    image processor's own class defaults, and Step3p7Processor compiled from processing_step3p7.py with a
    stand-in ProcessorMixin (the real one wants a tokenizer and torchvision, neither installed here)."""
    path = MODELS / "step3p7" / "image_processing_step3p7.py"
    defaults = _class_defaults(path, "Step3p7ImageProcessor")
    cls = next(n for n in ast.parse(path.read_text()).body
               if isinstance(n, ast.ClassDef) and n.name == "Step3p7ImageProcessor")
    methods = [n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name in ("_is_extreme_aspect",
                                                                                  "_plan_patches")]
    for node in cls.body:  # annotated class attributes (patch_size: int = 504, max_image_size, ...)
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and isinstance(node.value,
                                                                                               ast.Constant):
            defaults[node.target.id] = node.value.value
    plan = ast.ClassDef("Plan", [], [], methods, [], type_params=[])
    ns: dict = {}
    exec(compile(ast.fix_missing_locations(ast.Module([plan], [])), str(path), "exec"), ns)  # noqa: S102
    image_processor = type("ImageProcessor", (ns["Plan"],), defaults)()

    class ProcessorMixin:  # noqa: B903 - the stand-in takes what Step3p7Processor.__init__ passes on
        def __init__(self, image_processor, tokenizer=None, chat_template=None, **kwargs):
            self.image_processor = image_processor

    path = MODELS / "step3p7" / "processing_step3p7.py"
    tree = ast.parse(path.read_text())
    body = [n for n in tree.body if isinstance(n, ast.ClassDef)]
    for node in body:
        node.decorator_list = []
    ns = {"ProcessorMixin": ProcessorMixin, "MultiModalData": dict}
    exec(compile(ast.Module(body, []), str(path), "exec"), ns)  # noqa: S102
    return image_processor, ns["Step3p7Processor"]


def test_step37_processor_class_defaults_are_ours():
    """The values our tower and images.py take: Step3p7ImageProcessor's and Step3p7Processor's own."""
    image_processor, processor_cls = _step37_processor()
    v = spec_from_config(_step37()).vision
    processor = processor_cls(image_processor)
    assert (v.image_size, v.crop_size, v.longest_edge) == (image_processor.size["height"], image_processor.patch_size,
                                                           image_processor.max_image_size)
    assert v.patch_size * v.merge_size == image_processor.vision_patch_size * image_processor.downsampler_stride
    assert (processor.num_image_feature_size, processor.num_patch_feature_size) == (169, 81)


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_step37_image_tokens_equal_transformers_processor(width: int, height: int):
    """Positions one image takes: Step3p7Processor.replace_image_token's string for the crops _plan_patches
    makes (the newline mask as Step3p7ImageProcessor._preprocess builds it), each marker and <im_patch> one
    token; ViT patches: the global view plus each crop, patch_size apart."""
    import re

    image_processor, processor_cls = _step37_processor()
    processor = processor_cls(image_processor)
    size, crop = image_processor.size["height"], image_processor.patch_size
    *_, cols, rows, _ = image_processor._plan_patches(width, height, size, crop)
    crops = cols * rows
    # image_processing_step3p7.py _preprocess: "Newline after the last patch in each row except the final row"
    mask = [col == cols - 1 and row < rows - 1 for row in range(rows) for col in range(cols)]
    repl = processor.replace_image_token({"num_local_patches": [crops], "patch_newline_masks": [mask]}, 0)
    v = spec_from_config(_step37()).vision
    patches, tokens, _ = image_grid(v, width, height)
    assert tokens == len(re.findall(r"<[a-z_]+>", repl)) and "".join(re.findall(r"<[a-z_]+>", repl)) == repl
    vit = image_processor.vision_patch_size
    assert patches == (size // vit) ** 2 + crops * (crop // vit) ** 2


def test_step37_mtp_layers_are_named_not_counted_and_llamacpp_says_so(catalog):
    """num_nextn_predict_layers: kept as mtp_layers (transformers' Step3p7ForConditionalGeneration does not build
    them: the counts above equal it without them); llama.cpp's converter (Step35Model) writes them into the GGUF
    unless --no-mtp, which the llama.cpp answer says. llama.cpp's sliding layers are the config's
    sliding_attention layers, as Step35Model writes its sliding_window_pattern."""
    from app.estimator.runtimes.llamacpp_buffers import swa_layers

    config = _step37()
    spec = catalog.model("step-3.7-flash")
    assert spec.language_model.mtp_layers == config["num_nextn_predict_layers"] == 3
    assert spec_from_config(_step37_released()).language_model.mtp_layers == 3
    e = estimate(spec, VramRequest(model=spec.slug, runtime="llama.cpp", quantization="q4_k_m", context=32768),
                 catalog.gpus)
    said = "llama.cpp: convert_hf_to_gguf.py writes the checkpoint's 3 MTP layers"
    assert any(w.startswith(said) for w in e.warnings)
    assert swa_layers(spec.language_model, None) == {i for i, t in enumerate(config["layer_types"])
                                                     if t == "sliding_attention"}
    for runtime in ("transformers", "vllm"):
        e = estimate(spec, VramRequest(model=spec.slug, runtime=runtime, context=32768), catalog.gpus)
        assert not any("MTP" in w for w in e.warnings)


# --- DeepSeek-V4: sliding / CSA / HCA layers, compressors + indexer, hyper-connections --------------------------
def _v4_config(slug: str = "deepseek-v4-flash", **override) -> dict:
    return {k: v for k, v in _catalog(slug).items() if k != "quantization_config"} | override


@pytest.mark.parametrize("slug", ["deepseek-v4-flash", "deepseek-v4-pro"])
def test_deepseek_v4_layers_follow_transformers(slug: str):
    """compress_ratios (0 / 4 / 128, one more entry than layers: the MTP layer) as DeepseekV4Config resolves
    them into layer_types; every layer keeps the sliding_window."""
    config = _catalog(slug)
    theirs = transformers.AutoConfig.for_model("deepseek_v4", **{k: v for k, v in config.items()
                                                                 if k not in ("model_type", "quantization_config")})
    lm = spec_from_config(config).language_model
    names = {"sliding_attention": "sliding", "compressed_sparse_attention": "compressed_sparse",
             "heavily_compressed_attention": "heavily_compressed"}
    assert lm.layer_types == tuple(names[t] for t in theirs.layer_types)
    assert lm.compressed_attention.compress_rates == {names[k]: v for k, v in theirs.compress_rates.items()}
    assert lm.sliding_window == theirs.sliding_window and lm.hyper_connections == theirs.hc_mult


@pytest.mark.parametrize("kw", [
    {"num_hidden_layers": 6},  # compress_ratios cut to the first 6 entries
    {"num_hidden_layers": 5, "compress_rate_csa": 8, "compress_rate_hca": 64},  # legacy rate keys
    {"num_hidden_layers": 3, "compress_ratios": None,
     "layer_types": ["heavily_compressed_attention", "sliding_attention", "compressed_sparse_attention"]},
    {"num_hidden_layers": 4, "o_groups": 4, "hc_mult": 2, "index_n_heads": 16, "q_lora_rank": 512},
])
def test_deepseek_v4_variants_equal_transformers(kw: dict):
    config = {k: v for k, v in _v4_config(**kw).items() if v is not None}
    assert count_parameters(spec_from_config(config)).total == _count(config, "DeepseekV4ForCausalLM")


def test_deepseek_v4_compressor_and_indexer_weights_equal_transformers():
    """Per layer: transformers' compressor (and CSA's DeepseekV4Indexer) modules on the meta device against our
    compressor / indexer tensors; layers 0-1 sliding (none), 2 CSA, 3 HCA."""
    from app.estimator.params import model_tensors

    config = _v4_config(num_hidden_layers=4)
    cfg = transformers.AutoConfig.for_model("deepseek_v4", **{k: v for k, v in config.items() if k != "model_type"})
    with torch.device("meta"):
        model = transformers.DeepseekV4ForCausalLM(cfg)
    ours = model_tensors(spec_from_config(config))
    for i, layer in enumerate(model.model.layers):
        compressor = layer.self_attn.compressor
        theirs = sum(p.numel() for p in compressor.parameters()) if compressor is not None else 0
        mine = [t for t in ours if t.layer == i and ("compressor" in t.name or ".indexer." in t.name)]
        assert sum(t.numel for t in mine) == theirs, i
        hc = sum(p.numel() for p in (*layer.attn_hc.parameters(), *layer.ffn_hc.parameters()))
        assert sum(t.numel for t in ours if t.layer == i and ".hc_" in t.name) == hc


@pytest.mark.parametrize(("override", "field"), [
    ({"compress_ratios": [0, 8, 4]}, "config.compress_ratios"),
    ({"num_key_value_heads": 2}, "config.num_key_value_heads"),
    ({"o_groups": 7}, "config.o_groups"),
    ({"compress_ratios": [0, 4]}, "config.compress_ratios"),  # fewer entries than num_hidden_layers
])
def test_deepseek_v4_bad_config_is_a_422_naming_the_key(override: dict, field: str):
    with pytest.raises(InvalidRequest) as err:
        spec_from_config(_v4_config(num_hidden_layers=3, **override))
    assert err.value.field == field


@pytest.mark.parametrize(("runtime", "quantization", "field", "why"), [
    ("llama.cpp", "q4_k_m", "runtime", "llama.cpp has no DeepSeek-V4 architecture"),
    (None, "q4_k_m", "quantization", "llama.cpp has no DeepSeek-V4 architecture"),
    ("vllm", None, "runtime", "its cache is not modelled here yet"),
    ("vllm", "fp8-block128", "runtime", "its cache is not modelled here yet"),
])
def test_deepseek_v4_runtimes_without_a_model_refuse(catalog, runtime, quantization, field: str, why: str):
    spec = catalog.model("deepseek-v4-flash")
    with pytest.raises(InvalidRequest) as err:
        estimate(spec, VramRequest(model=spec.slug, runtime=runtime, quantization=quantization, context=32768),
                 catalog.gpus)
    assert err.value.field == field and why in str(err.value)


def test_deepseek_v4_default_answers_with_transformers(catalog):
    """The release's FP8 format lists vLLM first; vLLM refuses DeepSeek-V4, so the default is transformers."""
    spec = catalog.model("deepseek-v4-pro")
    e = estimate(spec, VramRequest(model=spec.slug, context=32768), catalog.gpus)
    assert (e.request.runtime, e.request.quantization) == ("transformers", "fp8-block128")
    assert e.breakdown.kv_cache == e.cache.kv_bytes + e.cache.state_bytes > 0


@pytest.mark.skipif(not SHARED.is_dir(), reason="shared configs not present")
def test_every_shared_2026_config_imports_or_is_a_remote_code_type_refused_with_its_reason():
    """The public 2026 configs (shared/configs-2026, each folder's source.txt names its origin): each imports
    through the API's config door, or its model_type is one transformers 5.25 does not define (remote code
    only) and the 422 gives REFUSED's reason."""
    from fastapi.testclient import TestClient
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES

    from app.main import create_app

    client = TestClient(create_app())
    refused = {}
    folders = sorted(d for d in SHARED.iterdir() if (d / "config.json").is_file())
    for folder in folders:
        body = '{"config": ' + (folder / "config.json").read_text() + "}"  # as sent: Infinity and NaN included
        r = client.post("/api/weights", content=body, headers={"Content-Type": "application/json"})
        if r.status_code != 200:
            model_type = json.loads((folder / "config.json").read_text())["model_type"]
            refused[folder.name] = model_type
            assert r.status_code == 422 and REFUSED[model_type] in r.text, (folder.name, r.text[:300])
            assert model_type not in CONFIG_MAPPING_NAMES, (folder.name, model_type)  # remote code only
    assert len(folders) >= 53 and len(refused) <= 2, refused
