"""The JSON API under /api: parse into the estimator's models, call it, represent the answer."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from app import hub
from app.catalog import Catalog
from app.estimator import (
    FORMATS,
    GROUP_LABELS,
    RUNTIMES,
    Gpu,
    VramEstimate,
    VramRequest,
    WeightsReport,
    count_parameters,
    weights_report,
)
from app.estimator.gguf.estimate import estimate_gguf
from app.estimator.gguf.reader import MAX_HEADER_BYTES, MAX_PARTS
from app.estimator.memo import per_spec
from app.estimator.params import count_active_parameters
from app.estimator.schema import _VLLM_FIELDS, WeightsRequest
from app.estimator.spec import ModelSpec
from app.hub import HF_FILE_PATTERN, HubUnavailable, fetch_gguf_header
from app.logs import MAX_LOG_BYTES, LogReport, check_log
from app.logs.rules import MAX_LINE
from app.problems import problem
from app.web.answers import answer
from app.web.deps import get_catalog
from app.web.limits import BODY_LIMITS
from app.web.logs_page import read_log_body
from app.web.rendering import TEMPLATES, is_htmx, represent_estimate
from app.web.trace_option import with_trace  # imports torch only when asked
from app.web.views import breakdown_context

router = APIRouter(prefix="/api", tags=["vram"])
CatalogDep = Annotated[Catalog, Depends(get_catalog)]

_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "Unknown model; the catalog is at /api/models."},
    422: {"description": "A field out of range or not allowed; `detail` names the field and what it allows. An "
                         "error of `type` request_rule is a value the schema allows that the model, the runtime or "
                         "another field rules out (a format without MoE experts, 2 images for a 1-image model)."},
    503: {"description": "A repo id not in the catalog could not be fetched from the Hugging Face Hub now "
                         "(network failure or timeout); `detail` says why."},
}
_VRAM_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "JSON, or the breakdown HTML fragment when the request carries `HX-Request: true`.",
          "content": {"text/html": {"schema": {"type": "string"}}}},
    **_ERRORS,
}
# --- the request's OpenAPI: the GET's query parameters and the POST's bodies, each from VramRequest itself ---
_REQUEST_SCHEMA = VramRequest.model_json_schema(ref_template="#/components/schemas/{model}")
_EXAMPLE = VramRequest.model_config["json_schema_extra"]["examples"][0]  # type: ignore[index]
_TEXT_CONFIG = {"type": "string", "description": "config.json as JSON text (a form carries text only). Give this "
                "or `model`.", "contentMediaType": "application/json", "pattern": r"^[ \t\n\r]*\{"}  # an object


def _without_defaults(schema: dict[str, Any]) -> dict[str, Any]:
    """A field's schema without its `default`: Swagger UI's "Try it out" would otherwise send every default
    as if the user had typed it; the server fills the defaults itself."""
    return {k: v for k, v in schema.items() if k not in ("default", "examples", "title")}


_BLANK_IS_DEFAULT = {*_VLLM_FIELDS, "quantization", "kv_cache", "runtime", "gpu",  # VramRequest's validators
                     "llm_int8_skip_modules"}


# A boolean as text: what pydantic's lax mode reads (pydantic-core str -> bool, case-insensitive, no spaces)
_BOOL_TEXT = {"type": "string", "pattern": "^(?:0|1|[Tt]|[Ff]|[Yy]|[Nn]|[Oo][Nn]|[Oo][Ff][Ff]|[Nn][Oo]|[Yy][Ee][Ss]|"
                                            "[Tt][Rr][Uu][Ee]|[Ff][Aa][Ll][Ss][Ee])$"}


def _text_field(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    """A field as a query string or form carries it: text only, so never null (absent means the default), a
    boolean as the words pydantic reads, and a blank value meaning the default where the model says so."""
    schema = _without_defaults(schema)
    branches = [b for b in schema.get("anyOf", ()) if b != {"type": "null"}]
    if len(branches) == 1:  # Optional[X]: X alone
        schema = {**branches[0], **{k: v for k, v in schema.items() if k != "anyOf"}}  # the field's own keys win
    if schema.get("type") == "boolean":
        schema = {"anyOf": [{"type": "boolean"}, _BOOL_TEXT], "description": schema.get("description", "")}
    if schema.get("type") == "array":  # a list of patterned strings as text: its entries comma-separated
        entry = schema["items"]["pattern"].removeprefix("^").removesuffix("$")
        schema = {"type": "string", "pattern": f"^{entry}(?:,{entry}){{0,{schema['maxItems'] - 1}}}$",
                  "description": schema.get("description", "")}
    return {"anyOf": [schema, {"type": "string", "maxLength": 0}]} if name in _BLANK_IS_DEFAULT else schema


_QUERY_PARAMETERS = [  # `config` is a JSON object: POST only, so a GET names `model`
    {"name": name, "in": "query", "required": name == "model", "description": schema.get("description", ""),
     "schema": {"type": "string", "minLength": 1} if name == "model" else _text_field(name, schema)}
    for name, schema in _REQUEST_SCHEMA["properties"].items() if name != "config"]


def _one_of_model_or_config(config: dict[str, Any]) -> list[dict[str, Any]]:
    """Exactly one of `model` and `config` (null counts as absent), as the request model checks it."""
    return [{"required": ["model"], "properties": {"model": {"type": "string"}, "config": {"type": "null"}}},
            {"required": ["config"], "properties": {"config": config, "model": {"type": "null"}}}]


_REQUEST_SCHEMA["oneOf"] = _one_of_model_or_config({"type": "object"})
_FORM_SCHEMA = {**_REQUEST_SCHEMA, "oneOf": [  # a form has no null: exactly one of the two is present
    {"required": ["model"], "not": {"required": ["config"]}}, {"required": ["config"], "not": {"required": ["model"]}}],
    "properties": {
    name: _TEXT_CONFIG if name == "config" else _text_field(name, schema)
    for name, schema in _REQUEST_SCHEMA["properties"].items()}}
_POST_BODY = {"requestBody": {
    "required": True,
    "description": "JSON is strict: integers must be JSON integers, booleans JSON booleans, strings JSON strings "
                   "(`true` is not 1; `8192.0` and `\"8192\"` are not integers). Form bodies, urlencoded or "
                   "multipart, carry strings parsed like query parameters (`8192`, `true`; `config` as JSON "
                   "text). Query parameters on a POST are a 422.",
    "content": {
        "application/json": {"schema": {"$ref": "#/components/schemas/VramRequest"}, "example": _EXAMPLE},
        "application/x-www-form-urlencoded": {"schema": _FORM_SCHEMA},
        "multipart/form-data": {"schema": _FORM_SCHEMA},
    }}}


def list_choices(doc: Any, choices: dict[str, list[str]]) -> None:
    """Set `enum` on every text schema of a field named in `choices` (query parameters and body properties,
    wherever /openapi.json has them); a blank text branch (the default) stays as it is."""
    if isinstance(doc, list):
        for item in doc:
            list_choices(item, choices)
        return
    if not isinstance(doc, dict):
        return
    if doc.get("in") == "query" and doc.get("name") in choices:
        _enum_on(doc["schema"], choices[doc["name"]])
    for name, schema in (doc.get("properties") or {}).items():
        if name in choices and isinstance(schema, dict):
            _enum_on(schema, choices[name])
    for value in doc.values():
        list_choices(value, choices)


def _enum_on(schema: dict[str, Any], values: list[str]) -> None:
    for branch in schema.get("anyOf", [schema]):
        if branch.get("type") == "string" and branch.get("maxLength") != 0:
            branch["enum"] = values


def request_schemas() -> dict[str, Any]:
    """The components the POST body names (app.main adds them to /openapi.json)."""
    return {"VramRequest": _REQUEST_SCHEMA, "WeightsRequest": WeightsRequest.model_json_schema()}


@router.get("/vram", response_model=VramEstimate, responses=_VRAM_RESPONSES, summary="Estimate GPU memory",
            openapi_extra={"parameters": _QUERY_PARAMETERS})
async def vram_get(request: Request, catalog: CatalogDep) -> Response:
    """GPU memory needed to run a catalog model; the same fields as POST, as query parameters."""

    def compute() -> tuple[Response, bool]:
        params = _query(request)
        est = hub.estimate_for(catalog, params)  # hub: unknown repo ids
        if params.trace:  # transformers' real code on fake tensors, beside the formula
            est = with_trace(hub.spec_for(catalog, params.model, params.config)[0], est)
        return represent_estimate(request, est, params), _pure(catalog, params)

    # a catalog model without config or trace: parsing and the estimate on the event loop; the Hub and a trace in
    # the thread pool
    query = request.query_params
    on_loop = catalog.lookup(query.get("model", "")) is not None and "config" not in query and "trace" not in query
    return await answer(request, compute, on_loop)


def _pure(catalog: Catalog, params: VramRequest) -> bool:
    """The answer depends on the request and the catalog alone: a catalog model, no inline config, no trace."""
    return params.config is None and not params.trace and catalog.lookup(params.model or "") is not None


# --- input parsing: strict JSON, lax form and query strings, no unread query parameters ---
_FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")


def _query(request: Request) -> VramRequest:
    """The query string as a VramRequest (text parsed leniently, as a form); a bad field is a 422 naming it."""
    try:
        return VramRequest.model_validate(dict(request.query_params))
    except ValidationError as exc:
        raise RequestValidationError(problem(exc, "query").detail) from exc


async def _body(request: Request) -> VramRequest:
    """The POST body as a VramRequest.

    JSON is validated strictly (`true` is not 1, `"8192"` not an integer); form bodies (urlencoded or
    multipart) carry only strings, so they parse like query strings ("8192", "true"). Query parameters
    are not read on POST, so any is a 422 naming it rather than silently ignored.
    """
    if request.query_params:
        raise RequestValidationError([
            {"type": "extra_forbidden", "loc": ("query", k), "input": v,
             "msg": "Extra inputs are not permitted (POST reads the body only; send this field there)"}
            for k, v in request.query_params.multi_items()])
    try:
        if request.headers.get("content-type", "").startswith(_FORMS):
            return VramRequest.model_validate(await _form_fields(request))
        body = await request.body() or b"null"  # at most 4 MiB (app/web/limits.py); parsed off the event loop
        return await run_in_threadpool(lambda: VramRequest.model_validate_json(body, strict=True))
    except ValidationError as exc:
        raise RequestValidationError(problem(exc, "body").detail) from exc


async def _form_fields(request: Request) -> dict[str, str]:
    """A form body's fields as strings (the last of repeated names wins); a file part or a malformed body
    is a 422 naming it."""
    try:
        async with request.form() as form:
            items = form.multi_items()
    except StarletteHTTPException as exc:  # Starlette's answer to a malformed multipart body
        if exc.status_code in (413, 415):  # the body cap (app/web/limits.py): answered as it is
            raise
        raise RequestValidationError([{"type": "value_error", "loc": ("body",), "input": None,
                                       "msg": f"malformed form body: {exc.detail}"}]) from exc
    files = [k for k, v in items if not isinstance(v, str)]
    if files:
        raise RequestValidationError([{"type": "string_type", "loc": ("body", k), "input": None,
                                       "msg": "Input should be a valid string, not a file"} for k in files])
    return dict(items)


@router.post("/vram", response_model=VramEstimate, responses=_VRAM_RESPONSES, openapi_extra=_POST_BODY,
             summary="Estimate GPU memory (JSON or form body)")
async def vram_post(request: Request, catalog: CatalogDep) -> Response:
    """The same estimate from a JSON body, or a form-encoded body (what the HTMX page posts)."""
    params = await _body(request)
    if _pure(catalog, params):  # a catalog model: the estimate on the event loop (app/web/answers.py `answer`)
        answer = hub.estimate_for(catalog, params)
    else:  # hub: may fetch, off the loop
        answer = await run_in_threadpool(hub.estimate_for, catalog, params)
    if params.trace:  # seconds of CPU: off the event loop
        spec = (await run_in_threadpool(hub.spec_for, catalog, params.model, params.config))[0]
        answer = await run_in_threadpool(with_trace, spec, answer)
    return represent_estimate(request, answer, params)


_FORMAT_SLUGS = {"enum": list(FORMATS)}  # the formats /api/quantizations lists


@router.get("/weights", response_model=WeightsReport, responses=_ERRORS, summary="Checkpoint size in a format")
async def weights(request: Request, catalog: CatalogDep,
                  model: Annotated[str, Query(description="Catalog slug or Hugging Face repo id.")],
                  quantization: Annotated[str | None, Query(description="Format slug.",
                                                            json_schema_extra=_FORMAT_SLUGS)] = None) -> Response:
    """Every tensor as the format stores it: total bytes, bits per weight, and per-group rows."""

    def compute() -> tuple[Response, bool]:
        report = weights_report(hub.spec_for(catalog, model, None)[0], quantization or None)  # hub: other repo ids
        return Response(report.model_dump_json(), media_type="application/json"), catalog.lookup(model) is not None

    return await answer(request, compute, on_loop=catalog.lookup(model) is not None)  # the Hub: the thread pool


# --- weights of a catalog model or of an inline config.json ---
_WEIGHTS_BODY = {"requestBody": {"required": True, "content": {"application/json": {
    "schema": {"$ref": "#/components/schemas/WeightsRequest"}}}}}


@router.post("/weights", response_model=WeightsReport, responses=_ERRORS, openapi_extra=_WEIGHTS_BODY,
             summary="Checkpoint size in a format (JSON body: model or config)")
async def weights_post(request: Request, catalog: CatalogDep) -> WeightsReport:
    """The same report for `{"model": ...}` or `{"config": {...config.json...}}`. A body that is not JSON
    (bytes that are not UTF-8 included) is a 422, as on /api/vram."""
    raw = await request.body() or b"null"  # at most 4 MiB (app/web/limits.py)
    try:
        body = await run_in_threadpool(WeightsRequest.model_validate_json, raw)
    except ValidationError as exc:
        raise RequestValidationError(problem(exc, "body").detail) from exc
    spec = (await run_in_threadpool(hub.spec_for, catalog, body.model, body.config))[0]  # hub: may fetch
    return await run_in_threadpool(weights_report, spec, body.quantization or None)


@router.get("/models", summary="The model catalog")
def models(catalog: CatalogDep) -> Response:
    return Response(_models_json(catalog), media_type="application/json")


@per_spec  # the catalog is immutable, so its listing is built once
def _models_json(catalog: Catalog) -> bytes:
    return json.dumps([{"slug": s.slug, "name": s.name, "family": s.family, "vendor": s.vendor,
                        "hf_repo": s.hf_repo, "modality": s.modality, "parameters": count_parameters(s).total,
                        "active_parameters": count_active_parameters(s),
                        "max_context": s.language_model.max_context, "card": f"/models/{s.slug}",
                        "disagreements": len(s.discrepancies)} for s in catalog.models.values()]).encode()


@router.get("/models/{slug}", responses=_ERRORS, summary="One model: card, architecture, disagreements")
def model(slug: str, catalog: CatalogDep) -> dict[str, Any]:
    spec: ModelSpec = catalog.model(slug)
    params = count_parameters(spec)
    return {**spec.model_dump(), "parameters": {"language": params.language, "vision": params.vision,
                                                 "total": params.total}}


@router.get("/quantizations", summary="Weight formats")
def quantizations() -> list[dict[str, Any]]:
    return [{"slug": f.slug, "label": f.label, "group": f.group, "group_label": GROUP_LABELS[f.group],
             "runtimes": list(f.runtimes), "source": f.source} for f in FORMATS.values()]


@router.get("/runtimes", summary="Runtimes and their KV-cache types")
def runtimes() -> list[dict[str, Any]]:
    return [{"slug": r.slug, "label": r.label, "kv_cache": list(r.kv_types), "source": r.source,
             "versions": r.versions,  # the releases this model describes, for people
             "release_ranges": list(r.release_ranges)}  # vLLM: one profile per release range
            for r in RUNTIMES.values()]


@router.get("/gpus", summary="GPU catalog")
def gpus(catalog: CatalogDep) -> list[Gpu]:
    return catalog.gpus


# --- log import: a runtime's startup log beside our estimate ---
_LOG_TEXT = {"type": "string", "maxLength": MAX_LOG_BYTES, "pattern": r"[^ \t\n\r\f\v]"}  # not blank (BLANK)
_LOG_FIELDS = {"type": "object", "required": ["log"], "properties": {
    "log": _LOG_TEXT, **{k: {"type": ["string", "null"], "description": d} for k, d in (  # null: not given
        ("model", "The model the log is for, when its metadata does not name one (catalog slug or repo id)."),
        ("quantization", "The weight format, when the log does not say."),
        ("vllm_version", "The vLLM release, when the log does not print it."))}}}
_LOG_BODY = {"requestBody": {
    "required": True,
    "description": f"The log as text, JSON or a form field `log`; at most {MAX_LOG_BYTES:,} bytes of log and "
                   f"{BODY_LIMITS['/api/logs']:,} bytes of body (413 past either). Lines longer than "
                   f"{MAX_LINE:,} characters are read up to that length.",
    "content": {
        "text/plain": {"schema": _LOG_TEXT},
        "application/json": {"schema": _LOG_FIELDS},
        "application/x-www-form-urlencoded": {"schema": {**_LOG_FIELDS, "properties": {  # text: never null
            k: {**v, "type": "string"} for k, v in _LOG_FIELDS["properties"].items()}}},
    }}}


@router.post("/logs", response_model=LogReport, openapi_extra=_LOG_BODY,
             summary="Compare a startup log with our estimate",
             responses={413: {"description": f"Log longer than 2 MiB, or a body over {BODY_LIMITS['/api/logs']:,} "
                                             "bytes (counted as it arrives, chunked bodies included)."},
                        415: {"description": "A body sent with a Content-Encoding (gzip, ...): send it uncompressed."},
                        422: {"description": "No log in the body, or a JSON body that is not valid JSON."}})
async def logs(request: Request, catalog: CatalogDep) -> LogReport:
    """Parse a llama.cpp/Ollama or vLLM startup log, estimate the same settings, compare term by term.
    Nothing is stored; paths, host names and addresses are scrubbed from everything returned."""
    text, overrides = await read_log_body(request)
    return await run_in_threadpool(check_log, text, catalog, overrides)  # CPU: off the event loop


health = APIRouter(tags=["health"])


@health.get("/healthz", summary="Liveness")
async def healthz(catalog: CatalogDep) -> dict[str, Any]:  # no blocking work: answered on the loop, no thread hop
    return {"status": "ok", "models": len(catalog.models)}


# --- llama.cpp: a GGUF file's header, uploaded or fetched from the Hub ---
# a Hub file as app.hub's names take it: owner/name:file.gguf, or its resolve/blob URL
_HF_FILE = HF_FILE_PATTERN  # the Hub client's own rule (app/hub/_names.py), as is
_GGUF_BODY = {"requestBody": {
    "required": True,
    "description": f"Multipart: `file` once per part of the GGUF (its header: the first bytes, up to "
                   f"{MAX_HEADER_BYTES:,} bytes each; at most {MAX_PARTS} parts), or `hf`; the whole body at "
                   f"most {BODY_LIMITS['/api/gguf']:,} bytes (413 past it, counted as it arrives).",
    "content": {"multipart/form-data": {"schema": {
        "type": "object", "additionalProperties": False,  # any other field is a 422 naming it
        "anyOf": [{"required": ["file"]}, {"required": ["hf"]}],
        "properties": {"file": {"type": "array", "minItems": 1, "maxItems": MAX_PARTS,
                                "items": {"type": "string", "format": "binary",  # 3.0 and Swagger UI
                                          "contentMediaType": "application/octet-stream"},  # OpenAPI 3.1
                                "description": "The first bytes (header) of each part of the GGUF file."},
                       "hf": {"type": "string", "pattern": _HF_FILE,
                              "description": "Instead of file: owner/name:file.gguf or a Hub URL."},
                       **{k: _text_field(k, v) for k, v in VramRequest.model_json_schema()["properties"].items()
                          if k not in ("model", "config")}},  # the file or hf is the model
    }}}}}
_GGUF_ERRORS: dict[int | str, dict[str, Any]] = {
    **_ERRORS,
    413: {"description": f"A body over {BODY_LIMITS['/api/gguf']:,} bytes (all parts together)."},
    415: {"description": "A body sent with a Content-Encoding (gzip, ...): send it uncompressed."},
    503: {"description": "The Hugging Face Hub could not be reached, did not answer in time, or this server is "
                         "already fetching as many files as it allows (hf only); retry later."}}


def _hub_parts(ref: str) -> list[tuple[str, bytes]]:
    """Header bytes of each part of a Hub GGUF (`owner/name:file.gguf` or a Hub file URL), via app.hub."""
    try:
        return [(h.filename, h.header) for h in fetch_gguf_header(ref, field="hf")]
    except HubUnavailable as exc:
        raise HTTPException(503, str(exc)) from exc


def _gguf_request(fields: dict[str, Any]) -> VramRequest:
    try:
        return VramRequest.model_validate({"model": "gguf-file", **fields})
    except ValidationError as exc:
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]) from exc


async def _gguf_form(request: Request) -> tuple[list[tuple[str, bytes]], str | None, VramRequest]:
    """(uploaded parts, or a Hub reference to fetch, and the knobs); the body is capped by app/web/limits.py,
    so all parts together are at most one header's cap."""
    parts: list[tuple[str, bytes]] = []
    fields: dict[str, Any] = {}
    try:
        async with request.form(max_files=MAX_PARTS, max_fields=64) as form:
            for key, value in form.multi_items():
                if key == "file" and not isinstance(value, str):
                    parts.append(((value.filename or "upload.gguf")[:200], await value.read(MAX_HEADER_BYTES + 1)))
                elif isinstance(value, str) and value != "":
                    fields[key] = value
    except StarletteHTTPException as exc:
        if exc.status_code in (413, 415):
            raise
        raise RequestValidationError([{"type": "value_error", "loc": ("body",), "input": None,
                                       "msg": f"malformed form body: {str(exc.detail)[:200]}"}]) from exc
    ref = fields.pop("hf", None)
    params = _gguf_request(fields)
    return parts, (ref if ref and not parts else None), params


def _gguf_estimate(parts: list[tuple[str, bytes]], ref: str | None, params: VramRequest,
                   catalog: Catalog) -> VramEstimate:
    """Fetch (a Hub reference) and parse: blocking and CPU work, run in the thread pool."""
    return estimate_gguf(_hub_parts(ref) if ref else parts, params, catalog.gpus)


def _gguf_answer(est: VramEstimate, request: Request | None = None) -> Response:
    if request is not None and is_htmx(request):  # the calculator page: the breakdown partial
        return TEMPLATES.TemplateResponse(request, "partials/breakdown.html", breakdown_context(est),
                                          headers={"Vary": "HX-Request"})
    return Response(est.model_dump_json(), media_type="application/json")


@router.post("/gguf", response_model=VramEstimate, responses=_GGUF_ERRORS, openapi_extra=_GGUF_BODY,
             summary="Estimate llama.cpp memory for a GGUF file (header upload or Hub file)")
async def gguf_post(request: Request, catalog: CatalogDep) -> Response:
    """Send the header bytes of a .gguf as `file` (each part of a split file as another `file`), or a Hub
    file as `hf` (`owner/name:file.gguf` or its URL), and the llama.cpp knobs as form fields. Weights are the
    file's tensors to the byte; KV and compute follow its architecture keys."""
    parts, ref, params = await _gguf_form(request)
    est = await run_in_threadpool(_gguf_estimate, parts, ref, params, catalog)  # Hub fetch + parse: off the loop
    return _gguf_answer(est, request)


@router.get("/gguf", response_model=VramEstimate, responses=_GGUF_ERRORS,
            summary="Estimate llama.cpp memory for a GGUF file on the Hugging Face Hub")
def gguf_get(request: Request, catalog: CatalogDep,
             hf: Annotated[str, Query(description="owner/name:file.gguf or a Hub file URL.",
                                      json_schema_extra={"pattern": _HF_FILE})]) -> Response:
    """The same estimate for a Hub GGUF, knobs as query parameters (only its header is fetched)."""
    fields = {k: v for k, v in request.query_params.items() if k != "hf" and v != ""}
    return _gguf_answer(_gguf_estimate([], hf, _gguf_request(fields), catalog))
