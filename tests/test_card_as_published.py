"""The card's own words stay on the card they came from (family line, ranking), and formats that change
nothing for a model are listed disabled with the reason, and left out of its table (server-rendered HTML)."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from app.catalog import Catalog

# The seed card's heading over its sibling models, word for word (the GLM-4V-9B card this site reproduces;
# the project's reference notes quote it as "General Language Models from Z.ai").
SEED_FAMILY_LINE = "General Language Models from Z.ai"
DENSE = ("glm-4v-9b", "llama-3.1-8b", "glm-4-9b")  # no MoE experts (language_model.moe is None)
EXPERT_FORMATS = ("mxfp4", "mxfp4_moe")  # gpt-oss's MXFP4 experts; llama.cpp's MXFP4_MOE file type


def _section(html: str, heading_id: str) -> str:
    return html.split(f'id="{heading_id}"')[1].split("</section>")[0]


def test_seed_card_family_line_word_for_word(client: TestClient):
    html = client.get("/models/glm-4v-9b").text
    assert f'<h2 id="fam-h">{SEED_FAMILY_LINE}</h2>' in html
    assert 'href="/models/glm-4-9b"' in _section(html, "fam-h")  # still the catalog's list under it


@pytest.mark.parametrize("slug", ["glm-4-9b", "llama-3.1-8b", "gpt-oss-20b"])
def test_other_cards_keep_a_generated_family_heading(client: TestClient, catalog: Catalog, slug: str):
    html = client.get(f"/models/{slug}").text
    heading = re.search(r'<h2 id="fam-h">([^<]+)</h2>', html)[1]
    assert SEED_FAMILY_LINE not in html
    assert heading == f"More models from {catalog.model(slug).vendor}"


def test_seed_card_ranking_as_published(client: TestClient):
    ranking = _section(client.get("/models/glm-4v-9b").text, "rank-h")
    assert ranking.startswith(">Ranking is for Local LLMs.</h2>")
    assert "No evaluation benchmarks for GLM-4V available." in ranking
    assert re.findall(r"<dt>([^<]+)</dt><dd>([^<]+)</dd>", ranking) == [("Overall Rank", "-"), ("Coding Rank", "-")]


@pytest.mark.parametrize("slug", ["glm-4-9b", "llama-3.1-8b", "gpt-oss-20b", "qwen3-30b-a3b"])
def test_cards_without_a_ranking_show_none(client: TestClient, slug: str):
    html = client.get(f"/models/{slug}").text
    assert 'id="rank-h"' not in html and "Overall Rank" not in html and "Coding Rank" not in html


def test_api_card_carries_the_card_text(client: TestClient):
    seed = client.get("/api/models/glm-4v-9b").json()["card"]
    assert seed["family_heading"] == SEED_FAMILY_LINE
    assert seed["ranking"]["ranks"] == [{"label": "Overall Rank", "value": "-"}, {"label": "Coding Rank", "value": "-"}]
    other = client.get("/api/models/llama-3.1-8b").json()["card"]
    assert other["family_heading"] == "" and other["ranking"] is None


def _options(html: str) -> dict[str, str]:
    select = html.split('id="quantization"')[1].split("</select>")[0]
    return {m[1]: m[0] for m in re.finditer(r'<option value="([^"]+)"[^>]*>[^<]*</option>', select)}


@pytest.mark.parametrize("url", [f"/models/{s}" for s in DENSE] + [f"/calculator?model={s}" for s in DENSE])
def test_expert_formats_disabled_with_the_reason_on_dense_models(client: TestClient, url: str):
    html = client.get(url).text
    options = _options(html)
    for slug in EXPERT_FORMATS:
        assert re.fullmatch(rf'<option value="{slug}"[^>]* disabled>[^<]+ \(no MoE experts in this model\)</option>',
                            options[slug]), options[slug]
    assert not [o for s, o in options.items() if s not in EXPERT_FORMATS and "disabled" in o]
    assert 'data-q="mxfp4"' not in html and 'data-q="mxfp4_moe"' not in html  # no table row either


@pytest.mark.parametrize("url", ["/models/gpt-oss-20b", "/models/qwen3-30b-a3b", "/calculator?model=gpt-oss-20b"])
def test_expert_formats_offered_on_moe_models(client: TestClient, url: str):
    html = client.get(url).text
    assert not [o for o in _options(html).values() if "disabled" in o]
    if url.startswith("/models/"):
        assert 'data-q="mxfp4"' in html and 'data-q="mxfp4_moe"' in html


def test_a_chosen_expert_format_stays_selectable(client: TestClient):
    """The API answers MXFP4 for a dense model (its linears stay in the compute dtype), so a URL asking for it
    keeps it selected and enabled: a disabled option would drop out of the form's next request."""
    html = client.get("/models/glm-4v-9b", params={"quantization": "mxfp4"}).text
    assert _options(html)["mxfp4"] == '<option value="mxfp4" selected>MXFP4 (experts)</option>'


def test_card_update_carries_the_context_label(client: TestClient):
    """The label is swapped in with the numbers it names (and only then)."""
    update = client.get("/models/glm-4v-9b", params={"context": "5000"}, headers={"HX-Request": "true"}).text
    assert '<output id="context-size" for="context" hx-swap-oob="true">5,000</output>' in update
    assert 'data-state="bf16/5000/0"' in update
