"""One Jinja environment, its filters, and the JSON-or-fragment representation of an estimate."""

from __future__ import annotations

import re
from functools import lru_cache

from fastapi import Request
from fastapi.responses import Response
from fastapi.templating import Jinja2Templates
from jinja2 import pass_context
from jinja2.runtime import Context
from markupsafe import Markup, escape

from app.estimator import VramEstimate, VramRequest
from app.resources import data_dir
from app.units import gib
from app.web.urls import flags, page_url
from app.web.views import breakdown_context

TEMPLATES = Jinja2Templates(directory=data_dir("templates"))
# the templates ship with the app and never change while it runs: no os.stat of each file per render to see
# whether it changed (jinja2 Environment.auto_reload, default on: 8 stats per card page)
TEMPLATES.env.auto_reload = False


# --- public sources only: the data names public sources (tests/test_public_text.py); link them ---
_LINKS = (  # (pattern on escaped text, URL template, link text template)
    (re.compile(r"\bvLLM (?:vllm/)?((?:model_executor|v1|worker)/[\w/.-]+\.py)"),
     "https://github.com/vllm-project/vllm/blob/main/vllm/{0}", "vLLM {0}"),
    (re.compile(r"\bllama\.cpp ((?:src|ggml|tools|examples|common)/[\w/.-]+\.(?:cpp|h|c|md))"),
     "https://github.com/ggml-org/llama.cpp/blob/master/{0}", "llama.cpp {0}"),
    (re.compile(r"\b([A-Za-z0-9][\w.-]*/[\w.-]+)(?: :)? ([\w/.-]+\.(?:json|py|md|txt|jinja|safetensors)|LICENSE)"),
     "https://huggingface.co/{0}/blob/main/{1}", "{0} {1}"),
    (re.compile(r"\barXiv:(\d{4}\.\d{4,5})"), "https://arxiv.org/abs/{0}", "arXiv:{0}"),
)


@lru_cache(maxsize=4096)  # an answer's lines repeat from one request to the next (four regex passes each)
def public(text: str) -> Markup:
    """Source text as visitors see it: public files (Hugging Face, llama.cpp, vLLM, arXiv) linked."""
    out = str(escape(text))
    for pattern, url, label in _LINKS:
        out = pattern.sub(lambda m, u=url, t=label: f'<a href="{u.format(*m.groups())}" rel="noopener">'
                          f"{t.format(*m.groups())}</a>", out)
    return Markup(out)


_ONCE: dict[tuple, tuple[object, Markup]] = {}
ONCE_ENTRIES = 4096  # bound: cleared when full (a table is ~11 KB)


@pass_context
def once(context: Context, name: str, oob: bool, spec: object, key: str) -> Markup:
    """Partial `name` rendered once per (model spec, `key`, `oob`) and reused: `key` with the spec must determine
    everything the partial reads from the page's context (the VRAM table and chart by their table_key; specs are
    immutable and live as long as their catalog). `oob`: rendered as an HTMX out-of-band swap."""
    k = (name, oob, id(spec), key)
    hit = _ONCE.get(k)
    if hit is None or hit[0] is not spec:  # holding the spec keeps its id from being reused
        if len(_ONCE) >= ONCE_ENTRIES:
            _ONCE.clear()
        html = Markup(context.environment.get_template(name).render({**context.get_all(), "oob": oob}))
        hit = _ONCE[k] = (spec, html)
    return hit[1]


TEMPLATES.env.globals["once"] = once
TEMPLATES.env.filters["gib"] = gib
TEMPLATES.env.filters["thousands"] = lambda n: f"{n:,}"
TEMPLATES.env.filters["public"] = public
TEMPLATES.env.filters["mib"] = lambda n: f"{n / 2**20:,.2f}"  # log page: MiB as llama.cpp prints


def is_htmx(request: Request) -> bool:
    """An HTMX swap request (a history restore wants the whole page)."""
    return (request.headers.get("HX-Request") == "true"
            and request.headers.get("HX-History-Restore-Request") != "true")


def represent_estimate(request: Request, est: VramEstimate, params: VramRequest | None = None) -> Response:
    """JSON for API clients; the breakdown partial for HTMX, with the page URL of this state (`params`, the
    request as given, adds its runtime flags to that URL)."""
    headers = {"Vary": "HX-Request"}
    if not is_htmx(request):
        return Response(est.model_dump_json(), media_type="application/json", headers=headers)
    page = page_url(request.headers.get("HX-Current-URL"), est.request, flags(params))
    headers["HX-Replace-Url"] = page
    return TEMPLATES.TemplateResponse(request, "partials/breakdown.html",
                                      breakdown_context(est, oob=True, params=params),
                                      headers=headers)
