"""Full HTML pages (not in the OpenAPI schema). The breakdown inside them is the same partial /api/vram
returns to HTMX, so the page and the API can never disagree. The card's URL answers its own HTMX
requests with the breakdown plus out-of-band table and chart: one request per change."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from app.catalog import Catalog
from app.estimator import KV_TYPES, RUNTIMES, InvalidRequest, UnknownModel, VramEstimate
from app.estimator.spec import ModelSpec
from app.logs import check_log
from app.logs.scrub import scrub
from app.web.accuracy import (
    accuracy_report,
    cases_under,
    field_2026,
    llamacpp_accuracy,
    log_cases,
    trace_report,
    under_share,
    under_share_by_backend,
    vllm_plan_accuracy,
)
from app.web.answers import answer
from app.web.calc_form import LABELS, runtime_controls
from app.web.calc_page import DEFAULT_MODEL, CalcState, NotFound, calc_state, find_spec, lenient
from app.web.deps import get_catalog
from app.web.logs_page import logs_context, read_log_body
from app.web.rendering import TEMPLATES, is_htmx
from app.web.urls import api_url
from app.web.views import CardState, breakdown_context, card_context, card_state, format_groups, kv_options

router = APIRouter(include_in_schema=False, default_response_class=HTMLResponse)
CatalogDep = Annotated[Catalog, Depends(get_catalog)]
SWAGGER = "/static/swagger-ui-5.32.0"  # Swagger UI's published assets, vendored (no CDN)


def _reason(exc: ValidationError | InvalidRequest) -> tuple[str, str]:
    if isinstance(exc, InvalidRequest):
        return exc.field, exc.message
    err = exc.errors()[0]
    return ".".join(map(str, err["loc"])), err["msg"]


def _page(request: Request, name: str, context: dict, est: VramEstimate | None = None,
          error: tuple[str, str] | list[tuple[str, str]] | str | None = None) -> Response:
    headers = {"Vary": "HX-Request"}
    if est is not None:  # the JSON twin of this page state
        link = context.get("api_url") or api_url(est.request)
        headers["Link"] = f'<{link}>; rel="alternate"; type="application/json"'
    return TEMPLATES.TemplateResponse(request, name, {**context, "error": error},
                                      status_code=422 if error else 200, headers=headers)


@router.get("/")
def index(request: Request, catalog: CatalogDep) -> Response:
    return _page(request, "index.html", {"models": list(catalog.models.values()), "gpus": catalog.gpus})


@router.get("/favicon.ico")
def favicon() -> Response:
    """Browsers ask for /favicon.ico before reading the page's <link rel="icon">."""
    return RedirectResponse("/static/favicon.svg", status_code=301)


@router.get("/go")
def go(catalog: CatalogDep, repo: Annotated[str, Query(max_length=200)] = "") -> Response:
    """A pasted Hugging Face repo id (or URL): its card when the catalog has it, else the calculator."""
    name = repo.strip().removeprefix("https://huggingface.co/").strip("/")
    for spec in catalog.models.values():
        if name.lower() in (spec.hf_repo.lower(), spec.slug):
            return RedirectResponse(f"/models/{spec.slug}", status_code=303)
    return RedirectResponse(f"/calculator?{urlencode({'model': name})}" if name else "/", status_code=303)


@router.get("/models/{slug}")
async def card(slug: str, request: Request, catalog: CatalogDep) -> Response:
    """The model card page, or its HTMX update; a catalog model's, so every answer is kept (app/web/answers.py)."""
    spec = catalog.model(slug)

    def compute() -> tuple[Response, bool]:
        if is_htmx(request):
            return _card_update(request, spec, catalog), True
        state, errors = lenient(lambda q: card_state(spec, catalog, q), request.query_params)  # bad fields named
        return _page(request, "card.html", card_context(spec, catalog, state), state.estimate, errors or None), True

    return await answer(request, compute, on_loop=True)  # a catalog model: the estimate and the template, no I/O


def _card_update(request: Request, spec: ModelSpec, catalog: Catalog) -> Response:
    """The breakdown, the table's highlight, and the table and chart only when their numbers changed
    (the page says which table it holds in `table_key`); a bad field is a 422 naming it (JSON)."""
    try:
        state: CardState = card_state(spec, catalog, request.query_params)
    except ValidationError as exc:
        raise RequestValidationError([{**e, "loc": ("query", *e["loc"])} for e in exc.errors()]) from exc
    context = card_context(spec, catalog, state)
    context["table_changed"] = request.query_params.get("table_key") != context["table_key"]
    headers = {"Vary": "HX-Request", "HX-Replace-Url": context["card_url"]}
    return TEMPLATES.TemplateResponse(request, "partials/card_update.html", context, headers=headers)


@router.get("/calculator")
def calculator(request: Request, catalog: CatalogDep) -> Response:
    name = (request.query_params.get("model") or DEFAULT_MODEL).strip()
    found = find_spec(catalog, name)  # the catalog's, else the Hub's, else "not found" with close matches
    if isinstance(found, NotFound):
        if is_htmx(request):
            raise HTTPException(404, found.reason)
        return TEMPLATES.TemplateResponse(request, "not_found.html", {"missing": found, "error": None},
                                          status_code=404, headers={"Vary": "HX-Request"})
    state = calc_state(catalog, found, name, request.query_params)
    if is_htmx(request):  # the form's own update: the breakdown, and the URL of the whole state
        return _calc_update(request, state)
    context = {"spec": found, "model_name": name, "models": list(catalog.models.values()), "gpus": catalog.gpus,
               "groups": format_groups(found), "runtimes": list(RUNTIMES.values()), "kv_types": kv_options(KV_TYPES),
               "runtime_controls": runtime_controls(), "runtime_labels": LABELS, "query": request.query_params,
               "typed_memory": state.gpu_memory,
               **breakdown_context(state.estimate, gpu_memory=state.gpu_memory, params=state.params)}
    return _page(request, "calculator.html", context, state.estimate, state.errors or None)


def _calc_update(request: Request, state: CalcState) -> Response:
    """The breakdown for the calculator's HTMX request; bad fields are a 422 naming each (JSON)."""
    if state.errors:
        raise RequestValidationError([{"type": "value_error", "loc": ("query", f), "msg": m,
                                       "input": request.query_params.get(f)} for f, m in state.errors])
    context = breakdown_context(state.estimate, oob=True, gpu_memory=state.gpu_memory, params=state.params)
    headers = {"Vary": "HX-Request", "HX-Replace-Url": context["calculator_url"]}
    return TEMPLATES.TemplateResponse(request, "partials/breakdown.html", context, headers=headers)


@router.get("/accuracy")
def accuracy(request: Request, catalog: CatalogDep) -> Response:
    cases = log_cases(catalog)  # committed public logs
    return _page(request, "accuracy.html", {"report": accuracy_report(catalog),
                                            "llamacpp": llamacpp_accuracy(catalog),  # the llama.cpp grid
                                            "traces": trace_report(catalog),  # traced transformers peaks
                                            "log_cases": cases, "log_under": under_share(cases),
                                            "log_backends": under_share_by_backend(cases),
                                            "log_2026_under": cases_under(field_2026(cases)),
                                            "vllm_plan": vllm_plan_accuracy(catalog)})


# --- log import page ---
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
    report = await run_in_threadpool(check_log, text, catalog, overrides)  # CPU: off the event loop

    def render() -> Response:  # scrubbing and rendering up to 2 MiB of text: CPU, off the event loop too
        return _page(request, "logs.html", logs_context(catalog, report, scrub(text), overrides))

    return await run_in_threadpool(render)


@router.get("/docs")
def docs() -> Response:
    """Swagger UI from our own static files, so /docs works without internet; a link back home on top."""
    ui = get_swagger_ui_html(openapi_url="/openapi.json", title="VRAM calculator API",
                             swagger_js_url=f"{SWAGGER}/swagger-ui-bundle.js",
                             swagger_css_url=f"{SWAGGER}/swagger-ui.css",
                             swagger_favicon_url="/static/favicon.svg",
                             swagger_ui_parameters={"validatorUrl": None})
    html = bytes(ui.body).decode().replace("<body>", '<body>\n<p class="docs-home" style="margin:.5rem 1rem;'
                                           'font:15px system-ui,sans-serif"><a href="/">&larr; VRAM calculator '
                                           'home</a> · <a href="/calculator">Calculator</a></p>', 1)
    return HTMLResponse(html)


def _wants_html(request: Request) -> bool:
    return not request.url.path.startswith("/api") and "text/html" in request.headers.get("accept", "")


def _html_404(request: Request, detail: str) -> Response:
    """For people: the page links the models; the JSON pointer of the API's message is left out."""
    detail = detail.split("; the catalog is at /api/")[0]
    return TEMPLATES.TemplateResponse(request, "404.html", {"detail": detail, "error": None}, status_code=404)


class HeadAsGet:
    """HEAD answers wherever GET does (FastAPI routes list GET only): the GET's status and headers, no body."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            return await self.app(scope, receive, send)

        async def headers_only(message: dict) -> None:
            if message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, headers_only)


class AllowEveryMethod:
    """A 405's Allow header names every method /openapi.json documents for the path (GET and POST of
    /api/vram are two routes, and Starlette's 405 names only the first)."""

    def __init__(self, app: ASGIApp, openapi: Callable[[], dict]) -> None:
        self.app, self.openapi = app, openapi

    def _methods(self, path: str) -> list[str]:
        for template, ops in self.openapi().get("paths", {}).items():
            if re.fullmatch(re.sub(r"\\{[^}]+\\}", "[^/]+", re.escape(template)), path):
                return sorted(m.upper() for m in ops if m in ("get", "post", "put", "patch", "delete"))
        return []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def allow(message: dict) -> None:
            methods = self._methods(scope["path"]) if message["type"] == "http.response.start" \
                and message["status"] == 405 else []
            if methods:
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"allow"]
                message = {**message, "headers": [*headers, (b"allow", ", ".join(methods).encode())]}
            await send(message)

        await self.app(scope, receive, allow)


class StaticGzip:
    """gzip for /static/ only (htmx and Swagger UI shrink 3x); pages stay plain, so Starlette's test
    client still sees which template and context rendered them."""

    def __init__(self, app: ASGIApp) -> None:
        self.app, self.gzip = app, GZipMiddleware(app, minimum_size=1024)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        static = scope["type"] == "http" and scope["path"].startswith("/static/")
        await (self.gzip if static else self.app)(scope, receive, send)


def install(app: FastAPI) -> None:
    """Page-side wiring: an HTML 404 with a way back for people; the API's own JSON answers (the
    handlers registered before this one) stay for /api and for clients that do not ask for HTML."""
    api_unknown = app.exception_handlers.get(UnknownModel)

    async def unknown_model(request: Request, exc: UnknownModel) -> Response:
        if _wants_html(request):
            return _html_404(request, str(exc))
        if api_unknown is not None:
            return await api_unknown(request, exc)
        return JSONResponse({"detail": str(exc)}, status_code=404)

    async def http_error(request: Request, exc: HTTPException) -> Response:
        if exc.status_code == 404 and _wants_html(request):
            return _html_404(request, str(exc.detail))
        return await http_exception_handler(request, exc)

    app.add_exception_handler(UnknownModel, unknown_model)
    app.add_exception_handler(HTTPException, http_error)
    app.add_middleware(StaticGzip)
    app.add_middleware(HeadAsGet)
    app.add_middleware(AllowEveryMethod, openapi=app.openapi)
