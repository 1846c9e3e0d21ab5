"""Full HTML pages (not in the OpenAPI schema). The breakdown inside them is the same partial /api/vram
returns to HTMX, so the page and the API can never disagree."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from app.accuracy import accuracy_report, llamacpp_accuracy, log_cases, trace_report, under_share
from app.catalog import Catalog
from app.deps import get_catalog
from app.estimator import KV_TYPES, RUNTIMES, InvalidRequest, VramEstimate, VramRequest, estimate
from app.estimator.spec import ModelSpec
from app.logs import check_log
from app.logs.scrub import scrub
from app.logs.web import logs_context, read_log_body
from app.rendering import TEMPLATES
from app.urls import CARD_FIELDS, api_url
from app.views import TABLE_COLUMNS, breakdown_context, card_context, format_groups, vram_table

router = APIRouter(include_in_schema=False, default_response_class=HTMLResponse)
CatalogDep = Annotated[Catalog, Depends(get_catalog)]


def _estimate_from_query(request: Request, spec: ModelSpec, catalog: Catalog,
                         fields: tuple[str, ...] | None) -> tuple[VramEstimate, str | None]:
    """The page state from the URL; a bad value shows the defaults with the reason, never an error page."""
    data = {k: v for k, v in request.query_params.items() if fields is None or k in fields}
    data["model"] = spec.slug
    try:
        return estimate(spec, VramRequest.model_validate(data), catalog.gpus), None
    except ValidationError as exc:
        err = exc.errors()[0]
        reason = f"{'.'.join(map(str, err['loc']))}: {err['msg']}"
    except InvalidRequest as exc:
        reason = f"{exc.field}: {exc.message}"
    return estimate(spec, VramRequest(model=spec.slug), catalog.gpus), reason


def _page(request: Request, name: str, context: dict, est: VramEstimate | None = None,
          error: str | None = None) -> Response:
    headers = {}
    if est is not None:  # the JSON twin of this page state
        headers["Link"] = f'<{api_url(est.request)}>; rel="alternate"; type="application/json"'
    return TEMPLATES.TemplateResponse(request, name, {**context, "error": error},
                                      status_code=422 if error else 200, headers=headers)


@router.get("/")
def index(request: Request, catalog: CatalogDep) -> Response:
    return _page(request, "index.html", {"models": list(catalog.models.values()), "gpus": catalog.gpus})


@router.get("/models/{slug}")
def card(slug: str, request: Request, catalog: CatalogDep) -> Response:
    spec = catalog.model(slug)
    est, error = _estimate_from_query(request, spec, catalog, CARD_FIELDS)
    return _page(request, "card.html", card_context(spec, catalog, est), est, error)


@router.get("/models/{slug}/vram-table")
def card_table(slug: str, request: Request, catalog: CatalogDep) -> Response:
    """The quantization x context table alone, re-highlighted for the current state (HTMX)."""
    spec = catalog.model(slug)
    est, error = _estimate_from_query(request, spec, catalog, CARD_FIELDS)
    context = {"spec": spec, "table": vram_table(spec, est.request.images), "estimate": est,
               "contexts": TABLE_COLUMNS}
    return _page(request, "partials/vram_table.html", context, None, error)


@router.get("/calculator")
def calculator(request: Request, catalog: CatalogDep) -> Response:
    slug = request.query_params.get("model") or "glm-4v-9b"
    spec = catalog.models.get(slug) or catalog.model("glm-4v-9b")
    est, error = _estimate_from_query(request, spec, catalog, None)
    if slug != spec.slug:
        error = f"model: unknown model {slug!r}; showing glm-4v-9b (see /api/models)"
    context = {"spec": spec, "models": list(catalog.models.values()), "gpus": catalog.gpus,
               "groups": format_groups(), "runtimes": list(RUNTIMES.values()), "kv_types": list(KV_TYPES.values()),
               **breakdown_context(est)}
    return _page(request, "calculator.html", context, est, error)


@router.get("/accuracy")
def accuracy(request: Request, catalog: CatalogDep) -> Response:
    cases = log_cases(catalog)  # issue 14: committed public logs
    return _page(request, "accuracy.html", {"report": accuracy_report(catalog),
                                            "llamacpp": llamacpp_accuracy(catalog),  # llama.cpp grid (issue 9)
                                            "traces": trace_report(catalog),  # traced peaks (issue 11)
                                            "log_cases": cases, "log_under": under_share(cases)})


# --- log import page (issue 14) ---
@router.get("/logs")
def logs_page(request: Request, catalog: CatalogDep) -> Response:
    return _page(request, "logs.html", logs_context(catalog, None, "", {}))


@router.post("/logs")
async def logs_submit(request: Request, catalog: CatalogDep) -> Response:
    """The no-JavaScript path: the form posts the text, the page answers with the comparison."""
    try:
        text, overrides = await read_log_body(request)
    except HTTPException as exc:
        return _page(request, "logs.html", logs_context(catalog, None, "", {}), error=str(exc.detail))
    report = check_log(text, catalog, overrides)
    return _page(request, "logs.html", logs_context(catalog, report, scrub(text), overrides))
