"""Exception handlers: estimator and Hub errors as HTTP answers (the mapping itself is app.problems)."""

from __future__ import annotations

import math
from typing import Any

from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from app.estimator import EstimatorError
from app.hub import HubUnavailable
from app.problems import problem


async def estimator_error(request: Request, exc: EstimatorError) -> JSONResponse:
    p = problem(exc, "query" if request.method == "GET" else "body")
    return JSONResponse({"detail": p.detail}, status_code=p.status)


def _finite(value: Any) -> Any:
    """JSON has no NaN or Infinity, nor bytes that are not UTF-8: a 422 that echoes such an input echoes it
    as text."""
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


async def invalid_input(request: Request, exc: RequestValidationError) -> JSONResponse:
    """FastAPI's own 422 body, made safe for inputs such as 1e400 or NaN (which json.dumps refuses)."""
    return JSONResponse({"detail": jsonable_encoder(_finite(list(exc.errors())))}, status_code=422)


# gated/missing/bad Hub files map through UnknownModel (404) and InvalidRequest (422); this is the 503
async def hub_unavailable(request: Request, exc: HubUnavailable) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": "30"})
