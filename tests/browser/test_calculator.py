"""The calculator's runtime flags and own inputs in real Chromium (Debian's, via Playwright): a vLLM flag
and a llama.cpp flag change the breakdown; a GGUF written by the gguf package's GGUFWriter (tensor data a
sparse hole) is read header-only and answered with its total. Screenshots at 390x844 and 1366x768."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from gguf import GGMLQuantizationType as T

from tests.test_hub import ggml_bytes, write_gguf

pytestmark = pytest.mark.browser
SIZES = {"laptop": (1366, 768), "phone": (390, 844)}
TINY = [  # (name, GGUF dims (ne0 first), type): one Llama-3-8B-sized layer and a 1,000-token vocabulary
    ("token_embd.weight", (4096, 1000), T.Q4_K),
    ("blk.0.attn_q.weight", (4096, 4096), T.Q4_K),
    ("blk.0.attn_k.weight", (4096, 1024), T.Q4_K),
    ("blk.0.attn_v.weight", (4096, 1024), T.Q6_K),
    ("blk.0.ffn_down.weight", (14336, 4096), T.Q6_K),
    ("blk.0.attn_norm.weight", (4096,), T.F32),
    ("output.weight", (4096, 1000), T.Q6_K),
]


def _settled(page) -> None:
    page.wait_for_function("!document.querySelector('[data-result].pending, .htmx-request')")


def _total(page) -> int:
    return int(page.get_attribute("#breakdown", "data-total-bytes"))


@pytest.mark.parametrize("size", list(SIZES))
def test_runtime_flags_and_own_gguf(server: str, browser, artifacts: Path, tmp_path: Path, size: str):
    w, h = SIZES[size]
    page = browser.new_page(viewport={"width": w, "height": h})
    # a vLLM flag: a smaller share of the GPU is a smaller claim
    page.goto(f"{server}/calculator?model=llama-3.1-8b&runtime=vllm&gpu=h100-80gb")
    before = _total(page)
    assert page.is_visible("#vllm-detail") and page.is_visible("#gpu_memory_utilization")
    page.fill("#gpu_memory_utilization", "0.5")
    page.wait_for_function(f"document.querySelector('#breakdown').dataset.totalBytes !== '{before}'")
    _settled(page)
    assert _total(page) < before and "0.5 x " in page.inner_text("#vllm-detail")
    page.fill("#gpu_memory_utilization", "2")  # a 422 beside the control, the old numbers marked stale
    page.wait_for_function("document.querySelector('#err-gpu_memory_utilization').textContent !== ''")
    assert "less than or equal to 1" in page.inner_text("#err-gpu_memory_utilization")
    page.screenshot(path=str(artifacts / f"calculator-vllm-{size}.png"), full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= w, "horizontal overflow"

    # a llama.cpp flag: a smaller micro-batch, a smaller compute buffer
    page.goto(f"{server}/calculator?model=llama-3.1-8b&quantization=q4_k_m&runtime=llama.cpp&gpu=rtx-4090")
    before = _total(page)
    page.fill("#n_ubatch", "128")
    page.wait_for_function(f"document.querySelector('#breakdown').dataset.totalBytes !== '{before}'")
    _settled(page)
    assert _total(page) < before and "n_ubatch 128" in page.inner_text("#llamacpp-detail")

    # your GGUF file: only the header is posted; the page shows the file's total and type mix
    path = write_gguf(tmp_path / "tiny-q4_k.gguf", TINY, n_vocab=1000)[0]
    sent: list[int] = []
    page.on("request", lambda r: sent.append(len(r.post_data_buffer or b"")) if r.url.endswith("/api/gguf") else None)
    page.set_input_files("#gguf-file", str(path))
    page.wait_for_selector("#gguf-detail")
    _settled(page)
    with path.open("rb") as f:
        api = httpx.post(f"{server}/api/gguf", files={"file": (path.name, f.read(8 << 20))},
                         data={"quantization": "q4_k_m", "gpu": "rtx-4090", "n_ubatch": "128"}).json()
    assert _total(page) == api["total_bytes"]
    stored = sum(ggml_bytes(dims, qtype) for _, dims, qtype in TINY)  # the format's block sizes
    assert api["gguf_file"]["tensor_bytes"] == stored
    assert f"{stored / 2**30:.2f} GiB of tensors" in page.inner_text("#gguf-detail")
    assert "Q6_K" in page.inner_text("#gguf-detail")
    assert sent and max(sent) < path.stat().st_size  # the tensor data never left the browser
    page.screenshot(path=str(artifacts / f"calculator-gguf-{size}.png"), full_page=True)
    page.close()


def test_bitsandbytes_skip_modules_control(server: str, browser):
    """transformers + bitsandbytes: typing llm_int8_skip_modules changes the weights to what the API answers for the
    same list; a bad entry is a 422 beside the control."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{server}/calculator?model=gemma-3-4b-it&quantization=bnb-int8&runtime=transformers")
    before = _total(page)
    assert page.is_visible("#llm_int8_skip_modules")
    skip = "lm_head,model.vision_tower,model.multi_modal_projector"
    page.fill("#llm_int8_skip_modules", skip)
    page.wait_for_function(f"document.querySelector('#breakdown').dataset.totalBytes !== '{before}'")
    _settled(page)
    api = httpx.get(f"{server}/api/vram", params={"model": "gemma-3-4b-it", "quantization": "bnb-int8",
                                                  "runtime": "transformers", "llm_int8_skip_modules": skip}).json()
    assert _total(page) == api["total_bytes"] > before  # the vision tower left 16-bit
    page.fill("#llm_int8_skip_modules", "(a+)+")
    page.wait_for_function("document.querySelector('#err-llm_int8_skip_modules').textContent !== ''")
    assert "allowed: dotted names" in page.inner_text("#err-llm_int8_skip_modules")
    page.close()
