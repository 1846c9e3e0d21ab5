"""The web app: `uvicorn app.main:app`. Wiring only; the work happens in the estimator."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from app import api, pages
from app.catalog import SPECS_DIR, load_catalog
from app.estimator import EstimatorError, InvalidRequest, UnknownModel
from app.hub_errors import HubUnavailable  # --- Hub client (hub branch) ---
from app.problems import problem
from app.resources import data_dir

STATIC = data_dir("static")


async def _problem(request: Request, exc: EstimatorError) -> JSONResponse:
    p = problem(exc, "query" if request.method == "GET" else "body")
    return JSONResponse({"detail": p.detail}, status_code=p.status)


def _finite(value: Any) -> Any:
    """JSON has no NaN or Infinity: a 422 that echoes such an input echoes it as text."""
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


async def _invalid_input(request: Request, exc: RequestValidationError) -> JSONResponse:
    """FastAPI's own 422 body, made safe for inputs such as 1e400 or NaN (which json.dumps refuses)."""
    return JSONResponse({"detail": _finite(jsonable_encoder(exc.errors()))}, status_code=422)


# --- Hub client (hub branch): gated/missing/bad files map through UnknownModel (404) and InvalidRequest (422)
async def _hub_unavailable(request: Request, exc: HubUnavailable) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": "30"})


def create_app(specs_dir: Path = SPECS_DIR) -> FastAPI:
    """Build the app; the catalog is validated here, so a bad spec file stops startup."""
    app = FastAPI(
        title="VRAM calculator for open models",
        summary="GPU memory for a model, quantization, context and images: exact weights and KV cache.",
        version="0.1.0",
        docs_url=None, redoc_url=None,  # --- pages (issue 12): /docs served offline by app.pages ---
    )
    app.state.catalog = load_catalog(specs_dir)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.include_router(api.router)
    app.include_router(api.health)
    app.include_router(pages.router)
    app.add_exception_handler(UnknownModel, _problem)
    app.add_exception_handler(InvalidRequest, _problem)
    app.add_exception_handler(HubUnavailable, _hub_unavailable)  # hub branch
    app.add_exception_handler(RequestValidationError, _invalid_input)
    pages.install(app)  # --- pages (issue 12): HTML 404 for people, JSON 404 under /api ---
    return app


app = create_app()
