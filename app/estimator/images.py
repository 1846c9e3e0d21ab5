"""Image tokens of dynamic-resolution vision towers, from the image size a request gives.

The rules mirror the transformers 5.25 processors (pure arithmetic, no transformers import):
- qwen2_vl (Qwen2-VL, Qwen2.5-VL, Qwen3-VL): models/qwen2_vl/image_processing_qwen2_vl.py `smart_resize` rounds
  height and width to multiples of patch_size x merge_size inside [min_pixels, max_pixels]; the ViT sees
  (h / patch) x (w / patch) patches of one frame (a still image is repeated to temporal_patch_size frames,
  grid_t = 1), and the processor expands <|image_pad|> to patches / merge_size^2 tokens.
- glm4v (GLM-4.1V): models/glm4v/image_processing_glm4v.py `smart_resize` with num_frames = temporal_factor =
  temporal_patch_size (a still image is two frames), sides first scaled up to at least one factor; tokens as
  qwen2_vl (Glm4vProcessor: image_grid_thw.prod() // merge_size^2).
- kimi_k25 (Kimi K2.5): models/kimi_k25/image_processing_kimi_k25.py `navit_resize` scales down (never up) to
  max_patches patches and size.max_height patches per side, then pads to multiples of patch x merge; tokens
  = padded patches / merge^2 (Kimi_K25ImageProcessor.get_number_of_image_patches, temporal merge of 1 frame).
- pixtral (Mistral Small 3.x, Magistral, Devstral, Ministral 3): models/pixtral/image_processing_pixtral.py
  `get_resize_output_image_size` scales the longest edge down to size.longest_edge (floor) and rounds each
  side up to a multiple of patch_size x spatial_merge_size; models/pixtral/processing_pixtral.py then writes
  one [IMG] per merged patch plus an [IMG_BREAK] after each row, the last replaced by [IMG_END].
- step3p7 (Step-3.7-Flash): models/step3p7/image_processing_step3p7.py `_plan_patches` keeps a global view
  resized to size (728 x 728) and cuts the image into local crops (resized to patch_size 504) by an
  aspect-dependent window; models/step3p7/processing_step3p7.py `replace_image_token` writes per crop
  <patch_start> + (504 / (14 x 4))^2 <im_patch> + <patch_end> (+ <patch_newline> after each row but the last),
  then <im_start> + (728 / 56)^2 <im_patch> + <im_end>. Each marker is one position, as vLLM's Step3VLProcessor
  counts them (num_patches x (patch features + 2) + image features + 2 + newlines).
"""

from __future__ import annotations

import math
import re
from collections import OrderedDict

from app.estimator.errors import InvalidRequest
from app.estimator.memo import forget, same_weights
from app.estimator.spec import ModelSpec, VisionTower

MAX_SIDE = 1 << 15  # pixels per side a request may name (far above any camera: 32768)
MAX_ASPECT = 200  # smart_resize raises ValueError above an aspect ratio of 200
SIZED_CACHE = 256  # sized copies kept (LRU); the weight caches key them on their base spec
_SIZED: OrderedDict[tuple[int, int, int], tuple[ModelSpec, ModelSpec]] = OrderedDict()
_SIZE = re.compile(r"^([1-9]\d{0,5})[xX×]([1-9]\d{0,5})$")  # schema.IMAGE_SIZE_PATTERN with the bounds below


def parse_image_size(value: str | None, field: str = "image_size") -> tuple[int, int] | None:
    """'WIDTHxHEIGHT' -> (width, height); a 422 naming `field` for anything else."""
    if value is None:
        return None
    match = _SIZE.match(value) if isinstance(value, str) else None
    if match is None:
        raise InvalidRequest(field, f"{field}={str(value)[:40]!r} is not allowed; allowed: WIDTHxHEIGHT in pixels, "
                                    f"e.g. 1024x768, each side 1 to {MAX_SIDE}")
    width, height = int(match[1]), int(match[2])
    if not (1 <= width <= MAX_SIDE and 1 <= height <= MAX_SIDE):
        raise InvalidRequest(field, f"{field}={value!r} is not allowed; allowed: each side 1 to {MAX_SIDE} pixels")
    if max(width, height) / min(width, height) > MAX_ASPECT:
        raise InvalidRequest(field, f"{field}={value!r} is not allowed; allowed: an aspect ratio up to {MAX_ASPECT} "
                                    "(the Qwen-VL processor's smart_resize refuses more)")
    return width, height


def smart_resize(height: int, width: int, factor: int, min_pixels: int, max_pixels: int) -> tuple[int, int]:
    """transformers models/qwen2_vl/image_processing_qwen2_vl.py smart_resize (5.25), line for line."""
    h_bar = round(height / factor) * factor
    w_bar = round(width / factor) * factor
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def glm4v_smart_resize(num_frames: int, height: int, width: int, temporal_factor: int, factor: int,
                       min_pixels: int, max_pixels: int) -> tuple[int, int]:
    """transformers models/glm4v/image_processing_glm4v.py smart_resize (5.25), line for line."""
    if height < factor or width < factor:
        scale = max(factor / height, factor / width)
        height = int(height * scale)
        width = int(width * scale)
    h_bar = round(height / factor) * factor
    w_bar = round(width / factor) * factor
    t_bar = round(num_frames / temporal_factor) * temporal_factor
    if t_bar * h_bar * w_bar > max_pixels:
        beta = math.sqrt((num_frames * height * width) / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif t_bar * h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (num_frames * height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def navit_resize(height: int, width: int, patch_size: int, merge_kernel_size: int, max_patches: int,
                 max_size_per_side: int) -> tuple[int, int]:
    """transformers models/kimi_k25/image_processing_kimi_k25.py navit_resize (5.25): the padded (h, w)."""
    num_patches_h = max(1.0, height // patch_size)
    num_patches_w = max(1.0, width // patch_size)
    scale_for_total_patches = math.sqrt(max_patches / (num_patches_h * num_patches_w))
    scale_for_height_patches = (max_size_per_side * patch_size) / height
    scale_for_width_patches = (max_size_per_side * patch_size) / width
    scale = min(1.0, scale_for_total_patches, scale_for_height_patches, scale_for_width_patches)
    new_height, new_width = max(1, int(height * scale)), max(1, int(width * scale))
    new_height = min(new_height, max_size_per_side * patch_size)
    new_width = min(new_width, max_size_per_side * patch_size)
    factor = merge_kernel_size * patch_size
    return (factor - new_height % factor) % factor + new_height, (factor - new_width % factor) % factor + new_width


def pixtral_resize(height: int, width: int, longest_edge: int, patch: int) -> tuple[int, int]:
    """transformers models/pixtral/image_processing_pixtral.py get_resize_output_image_size (5.25)."""
    ratio = max(height / longest_edge, width / longest_edge)
    if ratio > 1:
        height, width = int(math.floor(height / ratio)), int(math.floor(width / ratio))
    return ((height - 1) // patch + 1) * patch, ((width - 1) // patch + 1) * patch


def step3p7_plan(width: int, height: int, image_size: int, crop: int, max_image_size: int) -> tuple[int, int, int]:
    """transformers models/step3p7/image_processing_step3p7.py Step3p7ImageProcessor._plan_patches (5.25):
    (window, crops along the width, crops along the height); window 0: no local crops."""
    if min(width, height) < 32 and max(width / height, height / width) > 4:  # _is_extreme_aspect: squared
        width = height = max(width, height)
    if max(height, width) > max_image_size:
        scale = max_image_size / max(height, width)
        width, height = int(width * scale), int(height * scale)
    short_side, long_side = min(height, width), max(height, width)
    if long_side <= image_size:
        window = short_side if long_side / short_side > 1.5 else 0
    elif long_side / short_side > 4:
        window = min(short_side, crop)
    else:
        window = crop
    if window == 0:
        return 0, 0, 0
    crop_w, crop_h = (window * (dim // window + (dim % window > 0.2 * window)) if dim >= window else dim
                      for dim in (width, height))
    return window, max(1, crop_w // window), max(1, crop_h // window)


def image_grid(v: VisionTower, width: int, height: int) -> tuple[int, int, tuple[int, int]]:
    """(ViT patches, prompt tokens, resized (width, height)) of one image of width x height."""
    unit = v.patch_size * v.merge_size
    if v.resize in ("qwen2_vl", "glm4v"):
        assert v.min_pixels is not None and v.max_pixels is not None
        if v.resize == "qwen2_vl":
            h, w = smart_resize(height, width, unit, v.min_pixels, v.max_pixels)
        else:
            t = v.temporal_patch
            h, w = glm4v_smart_resize(t, height, width, t, unit, v.min_pixels, v.max_pixels)
        patches = (h // v.patch_size) * (w // v.patch_size)
        return patches, patches // (v.merge_size * v.merge_size), (w, h)
    if v.resize == "kimi_k25":
        assert v.max_patches is not None and v.longest_edge is not None
        h, w = navit_resize(height, width, v.patch_size, v.merge_size, v.max_patches, v.longest_edge // v.patch_size)
        patches = (h // v.patch_size) * (w // v.patch_size)
        return patches, patches // (v.merge_size * v.merge_size), (w, h)
    if v.resize == "pixtral":
        assert v.longest_edge is not None
        h, w = pixtral_resize(height, width, v.longest_edge, unit)
        rows, cols = h // unit, w // unit
        return (h // v.patch_size) * (w // v.patch_size), rows * (cols + 1), (w, h)
    if v.resize == "step3p7":
        assert v.crop_size is not None and v.longest_edge is not None
        _, cols, rows = step3p7_plan(width, height, v.image_size, v.crop_size, v.longest_edge)
        crops = cols * rows
        per_global, per_crop = (v.image_size // unit) ** 2, (v.crop_size // unit) ** 2
        newlines = rows - 1 if crops else 0
        tokens = crops * (per_crop + 2) + per_global + 2 + newlines
        patches = (v.image_size // v.patch_size) ** 2 + crops * (v.crop_size // v.patch_size) ** 2
        return patches, tokens, (v.image_size, v.image_size)
    raise ValueError(f"no resize rule {v.resize!r}")


def sized(spec: ModelSpec, width: int, height: int) -> ModelSpec:
    """`spec` with its dynamic-resolution tower's tokens computed for images of width x height."""
    key = (id(spec), width, height)
    hit = _SIZED.get(key)
    if hit is not None and hit[0] is spec:
        _SIZED.move_to_end(key)
        return hit[1]
    v = spec.vision
    assert v is not None and v.resize is not None
    patches, tokens, _ = image_grid(v, width, height)
    vision = v.model_copy(update={"embeddings_per_image": tokens, "patches_per_image": patches,
                                  "image": (width, height)})
    copy = spec.model_copy(update={"vision": vision})
    same_weights(copy, spec)  # the tower's tensors do not depend on the image size
    _SIZED[key] = (spec, copy)
    if len(_SIZED) > SIZED_CACHE:
        _, (_, old) = _SIZED.popitem(last=False)
        forget(old)
    return copy


def for_request(spec: ModelSpec, image_size: str | None) -> ModelSpec:
    """The spec whose image tokens follow the request's image_size (or the tower's default_image)."""
    asked = parse_image_size(image_size)
    v = spec.vision
    if v is None or v.resize is None:
        return spec
    width, height = asked or v.default_image or (v.image_size, v.image_size)
    if v.image == (width, height):
        return spec  # already sized for it (the importer sizes every tower for its default image)
    return sized(spec, width, height)


def describe(v: VisionTower, asked: str | None) -> str:
    """One line for the answer's assumptions: the image size, its resize, and the tokens it costs."""
    assert v.image is not None
    width, height = v.image
    _, tokens, (w, h) = image_grid(v, width, height)
    default = "" if asked else " (the default; set image_size=WIDTHxHEIGHT)"
    rule = {"pixtral": "longest-edge resize", "kimi_k25": "navit_resize"}.get(v.resize or "", "smart_resize")
    return (f"images: {width}x{height}{default} -> {rule} to {w}x{h} -> {v.patches_per_image:,} patches of "
            f"{v.patch_size} px, {tokens:,} prompt tokens per image (transformers {v.resize} processor rules)")
