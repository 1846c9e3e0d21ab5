"""The card, calculator and catalog pages, rendered server-side (no JavaScript needed), and the card's
own HTMX update (breakdown + out-of-band table and chart in one response)."""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.catalog import SPECS_DIR
from app.estimator import RUNTIMES, VramRequest, estimate
from app.main import create_app
from app.web.views import weights_parts
from tests.test_catalog import GLM4V_CARD

STATIC = Path(__file__).resolve().parent.parent / "static"
HX = {"HX-Request": "true"}
PAGES = ("/", "/models/glm-4v-9b", "/models/glm-4v-9b?gpu=h100-80gb&images=1", "/calculator",
         "/calculator?runtime=vllm&gpu=h100-80gb", "/accuracy", "/nope-404")


def test_card_shows_every_field_and_section(client: TestClient):
    r = client.get("/models/glm-4v-9b")
    assert r.status_code == 200
    html = r.text
    for label, value in GLM4V_CARD:
        assert re.search(rf"<dt>{re.escape(label)}</dt><dd><span class=\"card-value\">{re.escape(value)}</span>",
                         html), label
    for text in ("VRAM requirements for different quantization methods and context sizes",
                 "Choose the quantization method for model weights", "Context Size:", "1,024", "Full Calculator",
                 "The model card as published", "Ranking is for Local LLMs.",
                 "No evaluation benchmarks for GLM-4V available.", "Overall Rank", "Coding Rank", 'id="vram-total"'):
        assert text in html, text
    # the answer comes before the card facts in the document
    assert html.index('id="vram-total"') < html.index("The model card as published")


def test_card_shows_disagreements_beside_the_card(client: TestClient):
    html = client.get("/models/glm-4v-9b").text
    for released in ("13,906,320,896", "8,192 tokens", "Released model: 2", "glm-4", "June 2024", "1120x1120",
                     "Rotary"):
        assert released in html, released
    assert "4K pixels" in html.split("Where the card disagrees")[1]  # only as a corrected claim


@pytest.mark.parametrize(("label", "released"), [("Activation Function", "SwiGLU"), ("Normalization", "RMSNorm")])
def test_card_blanks_show_the_released_value(client: TestClient, label: str, released: str):
    """The card shows "-"; the released config (THUDM/glm-4v-9b config.json: rmsnorm true, SwiGLU FFN) knows."""
    html = client.get("/models/glm-4v-9b").text
    field = html.split(f"<dt>{label}</dt>")[1].split("</div>")[0]
    assert '<span class="card-value">-</span>' in field and f"Released model: {released}" in field


def test_family_list_comes_from_the_catalog(client: TestClient, catalog):
    html = client.get("/models/glm-4v-9b").text
    family = html.split('id="fam-h"')[1].split("</section>")[0]
    glm4v = catalog.model("glm-4v-9b")
    same = [m for m in catalog.models.values() if m.family == glm4v.family or
            (getattr(glm4v, "vendor", None) and getattr(m, "vendor", None) == glm4v.vendor)]
    assert all(f'href="/models/{m.slug}"' in family for m in same)
    assert 'href="/models/llama-3.1-8b"' not in family


def test_card_does_not_repeat_glm41v_claims_as_facts(client: TestClient, glm4v):
    text = " ".join(glm4v.card.description)
    for claim in ("aspect ratio", "4K", "video", "3D-RoPE"):
        assert claim not in text


def _options(html: str) -> set[str]:
    return set(re.findall(r'<option value="([^"]+)"', html.split('id="quantization"')[1].split("</select>")[0]))


def test_dropdown_lists_every_format_grouped(client: TestClient):
    """Every format of the API, except checkpoint formats (NVFP4, ModelOpt), which only their own models list."""
    from app.estimator import FORMATS

    html = client.get("/models/glm-4v-9b").text
    unlisted = {slug for slug, f in FORMATS.items() if not f.listed}
    assert unlisted == {"nvfp4", "nvfp4-w4a16", "fp8-static", "modelopt-mixed"}
    assert _options(html) == {f["slug"] for f in client.get("/api/quantizations").json()} - unlisted
    assert _options(client.get("/models/gemma-4-31b-it-nvfp4").text) - _options(html) == {"nvfp4"}
    for group in ("Full precision", "GPU quantization", "GGUF (llama.cpp)"):
        assert f'<optgroup label="{group}">' in html


def _slider(html: str) -> str:
    return html.split('id="context-slider"')[1].split(">")[0]


def test_slider_is_log_scaled_with_the_released_limit_marked(client: TestClient):
    html = client.get("/models/glm-4v-9b", params={"context": 8192}).text
    stops = [int(s) for s in re.search(r'data-stops="([^"]+)"', _slider(html)).group(1).split(",")]
    assert stops == [1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072]  # powers of two, 1K .. 128K
    assert 'value="3"' in _slider(html)  # 8,192 is the fourth stop
    ticks = re.findall(r'<span class="tick( limit)?">([^<]+)</span>', html)
    assert [t[1] for t in ticks] == ["1K", "2K", "4K", "8K", "16K", "32K", "64K", "128K"]
    assert [t[1] for t in ticks if t[0]] == ["8K"]  # GLM-4V-9B's seq_length 8192
    # the number box carries the exact value (the slider has no name, so it is never submitted)
    assert re.search(r'<input type="number" id="context" name="context"[^>]*value="8192"', html)
    assert "name=" not in _slider(html)
    one_m = client.get("/models/glm-4-9b-chat-1m").text
    assert "1M</span>" in one_m and '<span class="tick limit">1M</span>' in one_m


def test_off_grid_context_survives(client: TestClient):
    r = client.get("/models/glm-4v-9b", params={"context": 5000}, headers=HX)
    assert r.context["estimate"].request.context == 5000 and "context=5000" in r.headers["HX-Replace-Url"]


def test_form_wiring_one_request_later_wins(client: TestClient):
    html = client.get("/models/glm-4v-9b").text
    form = html.split('<form id="controls"')[1].split(">")[0]
    for attr in ('hx-get="/models/glm-4v-9b"', 'hx-sync="this:replace"', 'method="get"', "novalidate",
                 'action="/models/glm-4v-9b"', 'hx-target="#breakdown"'):
        assert attr in form, attr
    assert "hx-trigger" not in html.split('id="vram-table"')[1].split(">")[0]  # the table no longer asks itself
    assert 'hx-include="#table-key"' in form


def test_card_update_is_one_response_with_table_and_chart(client: TestClient):
    q = {"quantization": "q4_k_m", "context": "8192", "images": "1"}
    r = client.get("/models/glm-4v-9b", params=q, headers=HX)
    api = client.get("/api/vram", params={"model": "glm-4v-9b", **q}).json()
    assert r.status_code == 200 and "<html" not in r.text
    assert r.text.lstrip().startswith('<section id="breakdown"')
    assert '<div id="vram-table" class="vram-table" data-result hx-swap-oob="true">' in r.text
    assert '<figure id="chart" class="chart" data-result hx-swap-oob="true">' in r.text
    assert f'data-total-bytes="{api["total_bytes"]}"' in r.text
    style = r.text.split('<style id="table-highlight"')[1].split("</style>")[0]
    assert 'data-q="q4_k_m" data-c="8192" hx-swap-oob="true"' in style
    assert '#vram-table tr[data-q="q4_k_m"]>*,#vram-table th[data-c="8192"]' in style
    assert '<tr data-q="q4_k_m"><th scope="row">GGUF Q4_K_M</th>' in r.text
    assert '<th scope="col" data-c="8192">8K</th>' in r.text
    assert r.headers["Vary"] == "HX-Request"
    assert r.headers["HX-Replace-Url"] == "/models/glm-4v-9b?quantization=q4_k_m&context=8192&images=1"
    restore = client.get("/models/glm-4v-9b", params=q, headers={**HX, "HX-History-Restore-Request": "true"})
    assert "<html" in restore.text


def test_card_update_resends_the_table_only_when_its_numbers_change(client: TestClient):
    key = re.search(r'id="table-key" name="table_key" value="([^"]*)"', client.get("/models/glm-4v-9b").text)[1]
    same = client.get("/models/glm-4v-9b", params={"quantization": "q8_0", "table_key": key}, headers=HX).text
    assert 'id="vram-table"' not in same and 'id="chart"' not in same and 'data-q="q8_0"' in same
    other = client.get("/models/glm-4v-9b", params={"images": "1", "table_key": key}, headers=HX).text
    assert 'id="vram-table"' in other and "with --mmproj" in other
    gpu = client.get("/models/glm-4v-9b", params={"gpu": "l4", "table_key": key}, headers=HX).text
    assert "Largest context on NVIDIA L4" in gpu


@pytest.mark.parametrize(("field", "value"), [("images", "2"), ("images", "1.5"), ("context", "0"),
                                              ("gpu_memory", "-3"), ("gpu", "no-such-gpu")])
def test_card_update_422_names_the_field(client: TestClient, field: str, value: str):
    r = client.get("/models/glm-4v-9b", params={field: value}, headers=HX)
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"][-1] == field and r.json()["detail"][0]["msg"]


def test_bad_page_input_explains_next_to_the_control(client: TestClient):
    r = client.get("/models/glm-4v-9b", params={"images": "2"})
    assert r.status_code == 422
    slot = r.text.split('id="err-images" role="alert">')[1].split("</p>")[0]
    assert "at most 1" in slot
    assert re.search(r'id="images"[^>]*value="0"', r.text)  # the controls show the state the numbers are for
    assert client.get("/models/nope").status_code == 404


def test_table_states_runtime_and_vision_tower(client: TestClient):
    text_only = client.get("/models/glm-4v-9b", params={"images": 0}).text
    caption = text_only.split('<p class="table-note" id="table-note">')[1].split("</p>")[0]
    assert "llama.cpp rows: text only (no --mmproj)" in caption and "transformers rows: vision tower loaded" in caption
    row = text_only.split('<th scope="row">GGUF F16</th>')[1].split("</tr>")[0]
    assert "llama.cpp" in row and "text only (no --mmproj)" in row
    with_image = client.get("/models/glm-4v-9b", params={"images": 1}).text
    row = with_image.split('<th scope="row">GGUF F16</th>')[1].split("</tr>")[0]
    assert "with --mmproj" in row
    transformers_row = with_image.split('<th scope="row">BF16</th>')[1].split("</tr>")[0]
    assert "Hugging Face transformers" in transformers_row and "loaded" in transformers_row
    assert "Vision tower</th>" not in client.get("/models/llama-3.1-8b").text  # text model: no such column


@pytest.mark.parametrize("runtime", list(RUNTIMES))
@pytest.mark.parametrize("images", [0, 1])
def test_weights_line_adds_up(glm4v, runtime: str, images: int):
    """The breakdown's weights parts sum to the weights it shows (the '5.49 = 5.82 + 8.40' bug)."""
    fmt = "q4_k_m" if runtime == "llama.cpp" else "bf16"
    est = estimate(glm4v, VramRequest(model="glm-4v-9b", quantization=fmt, runtime=runtime, images=images))
    parts, left_out = weights_parts(est)
    total = sum(-p.bytes if p.sign == "-" else p.bytes for p in parts)
    assert total == est.breakdown.weights, (runtime, images, total, est.breakdown.weights)
    assert ("vision tower not loaded" in left_out) == (runtime == "llama.cpp" and images == 0), left_out


def test_gpu_fit_column_agrees_with_the_api(client: TestClient):
    """The largest context shown for a GPU fits by the API's own verdict, and one more token does not."""
    html = client.get("/models/llama-3.1-8b", params={"gpu": "rtx-4090", "quantization": "q4_k_m"}).text
    assert "Largest context on NVIDIA GeForce RTX 4090" in html
    cell = html.split('<th scope="row">GGUF Q8_0</th>')[1].split("</tr>")[0]
    shown = int(re.search(r'<td class="fit-col">([\d,]+)', cell).group(1).replace(",", ""))
    q = {"model": "llama-3.1-8b", "quantization": "q8_0", "gpu": "rtx-4090"}
    assert client.get("/api/vram", params={**q, "context": shown}).json()["fits"][0]["fits"]
    if "(model max)" not in cell:
        assert not client.get("/api/vram", params={**q, "context": shown + 1}).json()["fits"][0]["fits"]
    verdict = re.search(r'<p class="verdict (yes|no)">NVIDIA GeForce RTX 4090: (fits, with|does not fit, by) '
                        r'[\d.,]+ GiB', html)
    assert verdict


def test_typed_gpu_memory(client: TestClient):
    r = client.get("/models/glm-4v-9b", params={"gpu_memory": "12", "quantization": "q4_k_m"}, headers=HX)
    assert r.status_code == 200 and "12.00 GiB: fits, with" in r.text
    assert "Largest context on 12.00 GiB" in r.text
    assert "gpu_memory=12" in r.headers["HX-Replace-Url"] and "gpu=" not in r.headers["HX-Replace-Url"]
    json_link = re.search(r'href="(/api/vram[^"]+)"', r.text).group(1)
    assert "gpu=" not in json_link and client.get(json_link.replace("&amp;", "&")).status_code == 200


def test_vllm_line_speaks_per_gpu_and_in_whole_sequences(client: TestClient):
    html = client.get("/calculator", params={"model": "llama-3.1-8b", "runtime": "vllm", "quantization": "bf16",
                                             "gpu": "h100-80gb", "gpu_count": 2}).text
    kv = html.split("KV cache</th>")[1].split("</tr>")[0]
    assert re.search(r"KV budget of [\d,]+ tokens: [\d,]+ whole sequences of [\d,]+ positions", kv), kv
    assert "." not in re.search(r"([\d,.]+) whole", kv).group(1)
    assert re.search(r"GiB on each of 2 GPUs", html) and "vLLM claims" in html


def test_calculator_exposes_every_input(client: TestClient):
    html = client.get("/calculator", params={"model": "llama-3.1-8b", "quantization": "awq-int4", "batch": 4,
                                             "gpu": "l4"}).text
    for name in ("model", "quantization", "context", "batch", "images", "kv_cache", "runtime", "flash_attention",
                 "gpu", "gpu_count"):
        assert f'name="{name}"' in html, name
    assert 'id="breakdown"' in html and '<option value="l4" selected>' in html
    assert re.search(r'<p class="verdict (yes|no)">NVIDIA L4: (fits|does not fit)', html)
    short = client.get("/calculator", params={"model": "glm-4-32b-0414", "gpu": "rtx-3060-12gb"}).text
    assert "NVIDIA GeForce RTX 3060 12GB: does not fit, by" in short
    assert 'value="q4_k_m" data-runtimes="llama.cpp"' in html  # the page can disable refused runtimes


@pytest.mark.parametrize("url", PAGES)
def test_visitors_see_no_internal_references(client: TestClient, url: str):
    html = client.get(url, headers={"Accept": "text/html"}).text
    html = re.sub(r"[\w./:-]*/issues/\d+", "", html)  # public GitHub issue links are public sources
    for internal in ("shared/reference", "issue", ".md s", "DEVELOPERS.md"):
        assert internal not in html, (url, internal)


def test_sources_link_to_public_files(client: TestClient):
    html = client.get("/models/glm-4v-9b").text
    assert 'href="https://huggingface.co/THUDM/glm-4v-9b/blob/main/config.json"' in html
    assert 'href="https://github.com/vllm-project/vllm/blob/main/vllm/model_executor/models/glm4v.py"' in html


def test_no_request_to_another_host(client: TestClient):
    for url in ("/", "/models/glm-4v-9b", "/calculator", "/accuracy", "/docs"):
        html = client.get(url).text
        loads = re.findall(r'(?:src|action)="([^"]+)"', html) + re.findall(r'<link[^>]*href="([^"]+)"', html)
        loads += re.findall(r"(?:url|Url): ?'([^']+)'", html)
        assert loads and all(ref.startswith("/") for ref in loads), (url, loads)
    css = (STATIC / "app.css").read_text()
    assert "url(" not in css and "@import" not in css


def test_docs_served_offline(client: TestClient):
    html = client.get("/docs").text
    assert "/static/swagger-ui-5.32.0/swagger-ui-bundle.js" in html and "cdn" not in html.lower()
    assert client.get("/static/swagger-ui-5.32.0/swagger-ui-bundle.js").status_code == 200
    assert '"validatorUrl": null' in html
    assert client.get("/openapi.json").status_code == 200


def test_html_404_with_a_way_back_json_for_the_api(client: TestClient):
    page = client.get("/models/nope", headers={"Accept": "text/html"})
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert 'href="/"' in page.text and "nope" in page.text
    other = client.get("/no/such/page", headers={"Accept": "text/html"})
    assert other.status_code == 404 and "<h1>Not found</h1>" in other.text
    api = client.get("/api/models/nope", headers={"Accept": "text/html"})
    assert api.status_code == 404 and api.json()["detail"]


def test_favicon_and_dark_theme(client: TestClient):
    html = client.get("/").text
    assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in html
    assert client.get("/static/favicon.svg").headers["content-type"].startswith("image/svg+xml")
    assert "@media (prefers-color-scheme:dark)" in (STATIC / "app.css").read_text()


def test_repo_id_field_on_the_home_page(client: TestClient):
    assert '<form class="repo" method="get" action="/go">' in client.get("/").text
    known = client.get("/go", params={"repo": "THUDM/glm-4v-9b"}, follow_redirects=False)
    assert known.status_code == 303 and known.headers["location"] == "/models/glm-4v-9b"
    url = client.get("/go", params={"repo": "https://huggingface.co/THUDM/glm-4v-9b"}, follow_redirects=False)
    assert url.headers["location"] == "/models/glm-4v-9b"
    unknown = client.get("/go", params={"repo": "someone/Some-Model-7B"}, follow_redirects=False)
    assert unknown.headers["location"] == "/calculator?model=someone%2FSome-Model-7B"
    assert "is not in the catalog" in client.get(unknown.headers["location"]).text


def test_every_catalog_model_has_a_card(client: TestClient, catalog):
    for slug, spec in catalog.models.items():
        page = client.get(f"/models/{slug}")
        assert page.status_code == 200, slug
        assert not [s for s in ("shared/reference", "issue", ".md s") if s in page.text], slug
        update = client.get(f"/models/{slug}", params={"gpu": "rtx-4090", "images": int(spec.max_images > 0)},
                            headers=HX)
        assert update.status_code == 200 and 'id="vram-table"' in update.text, slug
    index = client.get("/").text
    assert all(f'href="/models/{slug}"' in index for slug in catalog.models)


def test_every_control_is_labelled(client: TestClient):
    for url in ("/models/glm-4v-9b", "/calculator", "/"):
        html = client.get(url).text
        ids = re.findall(r'<(?:input(?! type="hidden")|select)[^>]*\bid="([^"]+)"', html)
        assert ids and all(f'<label for="{i}"' in html for i in ids), (url, ids)


def test_budgets(client: TestClient):
    """Card update under 40 KB and 5 ms of server time (x4 margin through the test client); the whole card
    (HTML, CSS, JS, favicon) under 100 KB."""
    q = {"quantization": "q4_k_m", "context": "131072", "images": "1"}
    update = client.get("/models/glm-4v-9b", params=q, headers=HX)
    assert len(update.content) < 40_000, len(update.content)
    card = client.get("/models/glm-4v-9b", params=q)
    assets = sum(len(client.get(src).content) for src in re.findall(r'(?:src|href)="(/static/[^"]+)"', card.text))
    assert len(card.content) + assets < 100_000, (len(card.content), assets)
    times = []
    for i in range(30):
        t = time.perf_counter()
        client.get("/models/glm-4v-9b", params={**q, "context": str(1024 + i)}, headers=HX)
        times.append(time.perf_counter() - t)
    times.sort()
    assert times[len(times) // 2] < 0.005 * 4, times


def test_accuracy_page_without_measurements(client: TestClient):
    html = client.get("/accuracy").text
    assert "No GPU measurements are committed yet" in html and "python -m app.measure" in html


def test_accuracy_page_lists_cases_with_the_card_contrast(tmp_path: Path):
    """Rendering only: a run file made up in a temporary folder, never committed as a measurement."""
    specs = tmp_path / "specs"
    shutil.copytree(SPECS_DIR, specs)
    case = {"model": "glm-4v-9b", "quantization": "bf16", "context": 1024, "images": 1, "batch": 1,
            "new_tokens": 8, "weights_bytes": 27_812_641_792, "peak_allocated_bytes": 29 * 2**30,
            "peak_reserved_bytes": 30 * 2**30, "device_used_bytes": 31 * 2**30}
    run = {"device": {"name": "Test Device", "total_memory_bytes": 1, "driver": "d", "cuda": "c", "torch": "t",
                      "transformers": "x", "git_revision": "r"}, "started_at": "2026-11-29T00:00:00+00:00",
           "duration_s": 1.0, "log": "test.log", "cases": [case]}
    (specs / "measurements" / "test.json").write_text(json.dumps(run))
    html = TestClient(create_app(specs)).get("/accuracy").text
    assert "Test Device" in html and "glm-4v-9b bf16 ctx=1024 img=1 batch=1" in html
    assert "31.00" in html and "test.log" in html
    row = html.split("glm-4v-9b bf16 ctx=1024")[1].split("</tr>")[0]
    assert row.count("%") == 3  # our error, weights error, the card-trusting calculator's error


def test_slider_stops_include_any_released_maximum():
    from app.web.charts import context_slider

    odd = context_slider(40960, 40000)  # Qwen3-style 40,960-token limit: a stop of its own, labelled 40K
    assert odd.stops == (1024, 2048, 4096, 8192, 16384, 32768, 40960, 65536, 131072)
    assert odd.stops[odd.index] == 40960 and [t.label for t in odd.ticks if t.limit] == ["40K"]
    big = context_slider(1048576, 300000)  # beyond 128K: powers of two up to the limit
    assert big.stops[-4:] == (131072, 262144, 524288, 1048576) and big.stops[big.index] == 262144


# --- calculator: runtime options, your GGUF file, a pasted config.json (issues 9, 10) ---
def test_runtime_option_controls_are_generated_from_the_request_model(client: TestClient):
    from app.web.calc_form import BLOCKS, SHARED
    html = client.get("/calculator").text
    names = list(VramRequest.model_fields)
    for first, last in BLOCKS.values():
        for name in names[names.index(first):names.index(last) + 1]:
            if name in SHARED:  # one control for one meaning: kv_cache_dtype is the KV-cache select
                continue
            field = VramRequest.model_fields[name]
            assert re.search(rf'<label for="{name}">{name}</label>\s*<(input|select) [^>]*id="{name}" name="{name}"',
                             html), name
            help_text = re.search(rf'<small class="help" id="help-{name}">(.*?)</small>', html, re.S).group(1)
            assert help_text.split(":")[0] in field.description, name
    assert '<option value="">default: 2048</option>' not in html  # numbers show their default as placeholder
    assert re.search(r'id="n_batch" name="n_batch" [^>]*placeholder="default: 2048"', html)
    assert 'min="1" max="256"' in html  # n_parallel's limits, from Field(ge=1, le=MAX_LLAMA_SEQ)
    for value in ("q8_0", "iq4_nl", "q5_1"):  # LlamaCacheType
        assert f'<option value="{value}">{value}</option>' in html
    assert 'id="options-llamacpp"' in html and 'id="options-vllm"' in html


def test_runtime_flags_change_the_breakdown_and_a_bad_one_is_named(client: TestClient):
    base = {"model": "llama-3.1-8b", "runtime": "vllm", "gpu": "h100-80gb", "vllm_version": "0.19.0"}  # util 0.9
    one = client.post("/api/vram", data=base, headers=HX).text
    low = client.post("/api/vram", data={**base, "gpu_memory_utilization": "0.5"}, headers=HX).text
    assert 'id="vllm-detail"' in one and "Weights share" in one and "Above the budget" in one
    assert "0.9 x " in one and "0.5 x " in low
    short = client.post("/api/vram", data={**base, "gpu": "rtx-4060-8gb"}, headers=HX).text
    assert "Does not start: short by" in short and "no single flag fixes it" in short
    tight = client.post("/api/vram", data={**base, "gpu": "rtx-4090", "gpu_memory_utilization": "0.5"},
                        headers=HX).text
    assert "Does not start: short by" in tight and '<ul class="fixes"><li><code>' in tight
    llama = {"model": "llama-3.1-8b", "quantization": "q4_k_m", "runtime": "llama.cpp", "gpu": "rtx-4090"}
    a = client.post("/api/vram", data=llama, headers=HX).text
    b = client.post("/api/vram", data={**llama, "n_ubatch": "256"}, headers=HX).text
    assert 'id="llamacpp-detail"' in a and "n_ubatch 512" in a and "n_ubatch 256" in b
    assert re.search(r"<td>(exact|calibrated)</td>", a) and 'id="host-ram"' in a
    bad = client.get("/calculator", params={**llama, "n_ubatch": "0"})
    assert bad.status_code == 422
    assert re.search(r'id="err-n_ubatch" role="alert">[^<]*greater than or equal to 1', bad.text)
    blank = client.get("/calculator", params={**llama, "n_batch": "", "n_ctx": ""})
    assert blank.status_code == 200  # a blank control means the field's default


def test_pasted_config_renders_the_breakdown(client: TestClient):
    config = json.loads((SPECS_DIR / "configs/llama-3.1-8b-instruct/config.json").read_text())
    r = client.post("/api/vram", json={"config": config, "context": 8192}, headers=HX)
    assert r.status_code == 200 and 'id="breakdown"' in r.text
    assert "8,030,261,248 parameters" in r.text  # Llama-3.1-8B's parameter count as transformers reports it
    bad = client.post("/api/vram", json={"config": {"model_type": "llama"}}, headers=HX)
    assert bad.status_code == 422
    assert [str(p).split(".")[0] for p in bad.json()["detail"][0]["loc"]] == ["body", "config"]
    html = client.get("/calculator").text
    assert '<label for="config">' in html and 'id="err-config"' in html and 'id="gguf-file"' in html
    assert "Only the file's header" in html and "needs JavaScript" in html


def test_gguf_header_post_renders_the_breakdown_and_type_mix(client: TestClient, catalog, tmp_path: Path):
    from app.measure.llamacpp_gguf import write_sparse_gguf
    path = write_sparse_gguf(catalog.model("llama-3.1-8b"), "q4_k_m", tmp_path / "Llama-3.1-8B-Q4_K_M.gguf").path
    with path.open("rb") as f:
        head = f.read(8 << 20)  # what the page sends first: File.slice(0, 8 MiB)
    r = client.post("/api/gguf", files={"file": (path.name, head)}, data={"gpu": "rtx-4090"}, headers=HX)
    assert r.status_code == 200, r.text
    assert 'id="breakdown"' in r.text and 'id="gguf-detail"' in r.text and 'id="llamacpp-detail"' in r.text
    assert "4.58 GiB of tensors" in r.text  # llama.cpp quantize README: Llama-3.1-8B Q4_K_M is 4.58 GiB
    assert "<th scope=\"row\">Q4_K</th>" in r.text and "<th scope=\"row\">Q6_K</th>" in r.text
    cut = client.post("/api/gguf", files={"file": (path.name, head[:4096])}, headers=HX)
    assert cut.status_code == 422 and "truncated" in cut.json()["detail"][0]["msg"]  # the page asks for more


def test_vllm_fits_list_says_its_spare_is_inside_the_utilization_budget(client: TestClient):
    """A new user read "+53 GiB" beside a vLLM total as free memory: the list says what the margin is."""
    vllm = client.post("/api/vram", data={"model": "llama-3.1-8b", "runtime": "vllm", "gpu": "h100-80gb"},
                       headers={"HX-Request": "true"})
    plain = client.post("/api/vram", data={"model": "llama-3.1-8b"}, headers={"HX-Request": "true"})
    assert "inside gpu_memory_utilization" in vllm.text, vllm.text[:300]
    assert "Fits on <small>(+GiB to spare)</small>" in plain.text


def test_logs_page_states_a_vllm_estimate_in_the_logs_units(client: TestClient):
    """vLLM prints GiB and whole tokens: our column beside it uses the same units (a new user saw MiB)."""
    text = sorted((Path(__file__).parent / "fixtures" / "logs").glob("v1*.log"))[0].read_text()
    html = client.post("/logs", data={"log": text}).text
    assert "14.99 GiB" in html and " MiB</td>" not in html and ".0 tokens" not in html


# --- vLLM's KV plan beside vLLM's own planning code, and the 2026 field logs ---
def _plan_rows(table: dict, catalog_slugs: set[str]) -> dict[str, int]:
    """Rows of each catalog model vLLM planned (read from the committed table, not through the page's code)."""
    return {m["name"]: sum("error" not in s for s in m["settings"]) for m in table["models"]
            if m["name"] in catalog_slugs and any("error" not in s for s in m["settings"])}


def test_accuracy_page_shows_the_vllm_plan_tables(client: TestClient, catalog):
    html = client.get("/accuracy").text
    section = html.split('id="vllm-plan"')[1].split("</section>")[0]
    for name in ("plan.json", "plan-0.34.json"):
        table = json.loads((SPECS_DIR / "vllm" / name).read_text())
        rows = _plan_rows(table, set(catalog.models))
        total = sum(rows.values())
        assert total >= 250
        # every compared row equals vLLM's to the token (tests/test_vllm_plan.py asserts each row)
        assert (f"vLLM {table['versions']['vllm']} (block {table['inputs']['block_size']}): <strong>{total} of "
                f"{total}</strong> rows equal, 0 over, 0 under") in section
    row = section.split('<th scope="row">qwen3-8b</th>')[1].split("</tr>")[0]
    old = _plan_rows(json.loads((SPECS_DIR / "vllm" / "plan.json").read_text()), {"qwen3-8b"})["qwen3-8b"]
    assert row.startswith(f"<td>{old}</td><td>{old}</td><td>0</td><td>0</td>")
    assert "not in the catalog" in section and "vLLM gave no plan on CPU" in section


def test_accuracy_page_counts_a_row_that_differs(tmp_path: Path):
    """Rendering only: a copy of the table with one row's tokens moved by one, in a temporary folder."""
    specs = tmp_path / "specs"
    shutil.copytree(SPECS_DIR, specs)
    path = specs / "vllm" / "plan.json"
    table = json.loads(path.read_text())
    model = next(m for m in table["models"] if m["name"] == "qwen3-8b")
    model["settings"][0]["tokens"] += 1  # vLLM one token more: ours is under
    model["settings"][1]["tokens"] -= 1  # one token fewer: ours is over
    path.write_text(json.dumps(table))
    section = TestClient(create_app(specs)).get("/accuracy").text.split('id="vllm-plan"')[1].split("</section>")[0]
    n = sum("error" not in s for s in model["settings"])
    row = section.split('<th scope="row">qwen3-8b</th>')[1].split("</tr>")[0]
    assert row.startswith(f"<td>{n}</td><td>{n - 2}</td><td>1</td><td>1</td>")


def test_accuracy_page_gives_the_share_of_2026_field_cases_under(client: TestClient, catalog):
    """The 2026 field cases (G..) whose sidecar names a catalog model are compared: G02, G10, G13 today."""
    named = [p for p in (Path(__file__).parent / "fixtures" / "logs").glob("g*.source.json")
             if json.loads(p.read_text()).get("case", "").startswith("G")
             and json.loads(p.read_text()).get("overrides", {}).get("model") in catalog.models]
    assert len(named) >= 3
    html = client.get("/accuracy").text
    assert re.search(r"The 2026 field cases: we are under \(at least one term on the unsafe side\) on <strong>\d+ of "
                     rf"{len(named)}</strong> cases compared \(\d+%\)", html)
