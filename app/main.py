"""The web app: `uvicorn app.main:app`, or `python -m app.main [uvicorn options]`. Wiring only; the work happens
in the estimator.

`python -m app.main` takes uvicorn's options and checks the catalog in this process before uvicorn starts any
worker, so a bad catalog stops it with exit code 3 whatever `--workers` says (uvicorn 0.55's `--workers`
supervisor stops when a worker exits 3, but exits 0 itself: uvicorn/main.py `run`).
"""

from __future__ import annotations

import copy
import gc
import sys
from pathlib import Path

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.staticfiles import StaticFiles

from app.catalog import SPECS_DIR, CatalogError, load_catalog
from app.estimator import InvalidRequest, UnknownModel
from app.hub import HubUnavailable
from app.resources import data_dir
from app.web import api, handlers, pages
from app.web.answers import Answers
from app.web.limits import BodyLimit

STATIC = data_dir("static")


def create_app(specs_dir: Path = SPECS_DIR) -> FastAPI:
    """Build the app; the catalog is validated here, so a bad spec file stops startup."""
    app = FastAPI(
        title="VRAM calculator for open models",
        summary="GPU memory for a model, quantization, context and images: exact weights and KV cache.",
        version="0.1.0",
        docs_url=None, redoc_url=None,  # /docs is served offline (vendored Swagger UI) by app.web.pages
    )
    app.state.catalog = load_catalog(specs_dir)
    app.state.answers = Answers()  # answers of catalog requests, kept (app/web/answers.py)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.include_router(api.router)
    app.include_router(api.health)
    app.include_router(pages.router)
    app.add_exception_handler(UnknownModel, handlers.estimator_error)
    app.add_exception_handler(InvalidRequest, handlers.estimator_error)
    app.add_exception_handler(HubUnavailable, handlers.hub_unavailable)
    app.add_exception_handler(RequestValidationError, handlers.invalid_input)
    pages.install(app)  # an HTML 404 for people, the JSON 404 under /api
    app.add_middleware(BodyLimit)  # every request body counted against its path's cap (413)
    _openapi_with(app, api.request_schemas(), {"gpu": [g.slug for g in app.state.catalog.gpus]})
    return app


def _openapi_with(app: FastAPI, schemas: dict, choices: dict[str, list[str]]) -> None:
    """/openapi.json also defines the schemas the hand-written request bodies refer to, and lists the
    catalog's slugs for the fields that take them (`choices`: field name -> slugs)."""
    generate = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            # a copy: the hand-written parts are module-level dicts, and each app lists its own catalog's slugs
            doc = app.openapi_schema = copy.deepcopy(generate())
            doc.setdefault("components", {}).setdefault("schemas", {}).update(copy.deepcopy(schemas))
            api.list_choices(doc, choices)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


# uvicorn's exit code for a worker that failed before serving (uvicorn/config.py STARTUP_FAILURE, 0.55.0): its
# --workers supervisor stops instead of restarting it, so a bad catalog ends the server whatever the count.
STARTUP_FAILURE = 3

try:
    app = create_app()
except CatalogError as exc:
    print(f"vram-calculator: cannot start: the model catalog does not load: {exc}", file=sys.stderr, flush=True)
    raise SystemExit(STARTUP_FAILURE) from None
# The catalog, the app and everything imported live as long as the process: out of the cyclic collector's full
# passes, which otherwise walk them all and stall every request meanwhile (bench/bench_gc.py measures the pause)
gc.freeze()


if __name__ == "__main__":  # the catalog loaded above (or the process exited 3); now uvicorn, with every option
    from uvicorn.main import main as uvicorn_main

    uvicorn_main([f"{__spec__.name}:app", *sys.argv[1:]], prog_name="python -m app.main")
