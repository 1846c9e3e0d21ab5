"""The web app: `uvicorn app.main:app`. Wiring only; the work happens in the estimator."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from app import api, pages
from app.catalog import SPECS_DIR, load_catalog
from app.estimator import InvalidRequest, UnknownChoice, UnknownModel
from app.hub_errors import HubUnavailable  # --- Hub client (hub branch) ---

STATIC = Path(__file__).resolve().parent.parent / "static"


async def _unknown_model(request: Request, exc: UnknownModel) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=404)


async def _invalid(request: Request, exc: InvalidRequest) -> JSONResponse:
    where = "query" if request.method == "GET" else "body"
    error = {"type": "value_error", "loc": [where, exc.field], "msg": exc.message}
    if isinstance(exc, UnknownChoice):
        error["input"] = exc.value
        error["ctx"] = {"allowed": exc.allowed}
    return JSONResponse({"detail": [error]}, status_code=422)


# --- Hub client (hub branch): gated/missing/bad files map through UnknownModel (404) and InvalidRequest (422)
async def _hub_unavailable(request: Request, exc: HubUnavailable) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": "30"})


def create_app(specs_dir: Path = SPECS_DIR) -> FastAPI:
    """Build the app; the catalog is validated here, so a bad spec file stops startup."""
    app = FastAPI(
        title="VRAM calculator for open models",
        summary="GPU memory for a model, quantization, context and images: exact weights and KV cache.",
        version="0.1.0",
    )
    app.state.catalog = load_catalog(specs_dir)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.include_router(api.router)
    app.include_router(api.health)
    app.include_router(pages.router)
    app.add_exception_handler(UnknownModel, _unknown_model)
    app.add_exception_handler(InvalidRequest, _invalid)
    app.add_exception_handler(HubUnavailable, _hub_unavailable)  # hub branch
    return app


app = create_app()
