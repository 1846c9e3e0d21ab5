"""One Jinja environment, its filters, and the JSON-or-fragment representation of an estimate."""

from __future__ import annotations

from pathlib import Path

from fastapi import Request
from fastapi.responses import Response
from fastapi.templating import Jinja2Templates

from app.estimator import VramEstimate
from app.urls import page_url
from app.views import breakdown_context

TEMPLATES = Jinja2Templates(directory=Path(__file__).resolve().parent.parent / "templates")
GIB = 2**30


def gib(n: int) -> str:
    """Bytes as GiB (2^30) with two decimals: the only place bytes become GiB."""
    return f"{n / GIB:,.2f}"


TEMPLATES.env.filters["gib"] = gib
TEMPLATES.env.filters["thousands"] = lambda n: f"{n:,}"
TEMPLATES.env.filters["mib"] = lambda n: f"{n / 2**20:,.2f}"  # log page: MiB as llama.cpp prints (issue 14)


def is_htmx(request: Request) -> bool:
    return request.headers.get("HX-Request") == "true"


def represent_estimate(request: Request, est: VramEstimate) -> Response:
    """JSON for API clients; the breakdown partial for HTMX, with the page URL of this state."""
    headers = {"Vary": "HX-Request"}
    if not is_htmx(request):
        return Response(est.model_dump_json(), media_type="application/json", headers=headers)
    page = page_url(request.headers.get("HX-Current-URL"), est.request)
    headers["HX-Replace-Url"] = page
    return TEMPLATES.TemplateResponse(request, "partials/breakdown.html", breakdown_context(est, oob=True),
                                      headers=headers)
