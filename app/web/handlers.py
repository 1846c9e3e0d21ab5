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


ECHO = 200  # characters of a bad value a 422 echoes back; more items than this of a list or object are cut


def _short(value: Any, depth: int = 0) -> Any:
    """What a 422 echoes of a bad input: a short prefix of a long string, bytes as text, a few items of a
    container, a number too long to print as its digit count (Python refuses int -> str past 4,300 digits)."""
    if isinstance(value, bytes | bytearray):
        value = bytes(value[:ECHO]).decode("utf-8", "replace")
    if isinstance(value, str):
        return value if len(value) <= ECHO else value[:ECHO] + "..."
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 600:
        return f"an integer of {value.bit_length()} bits"
    if isinstance(value, dict):
        if depth > 2:
            return "{...}"
        return {str(k)[:ECHO]: _short(v, depth + 1) for k, v in list(value.items())[:ECHO // 10]}
    if isinstance(value, list | tuple):
        return "[...]" if depth > 2 else [_short(v, depth + 1) for v in list(value)[:ECHO // 10]]
    return value


async def invalid_input(request: Request, exc: RequestValidationError) -> JSONResponse:
    """FastAPI's own 422 body, made safe for inputs such as 1e400 or NaN (which json.dumps refuses), and
    short: each echoed input cut to a prefix (a 200 MiB string is not sent back)."""
    errors = [{k: _short(v) if k in ("input", "ctx", "loc") else v for k, v in e.items()} for e in exc.errors()[:50]]
    return JSONResponse({"detail": _finite(jsonable_encoder(errors))}, status_code=422)


# gated/missing/bad Hub files map through UnknownModel (404) and InvalidRequest (422); this is the 503
async def hub_unavailable(request: Request, exc: HubUnavailable) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": "30"})
