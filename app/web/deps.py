"""FastAPI dependencies: routes reach the catalog through these, never through a global import."""

from __future__ import annotations

from fastapi import Request

from app.catalog import Catalog


async def get_catalog(request: Request) -> Catalog:  # async: no threadpool hop per request
    return request.app.state.catalog
