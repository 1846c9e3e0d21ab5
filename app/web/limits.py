"""Request body caps, per endpoint, enforced on the bytes as they arrive (chunked bodies included).

An ASGI middleware wraps `receive`: a declared Content-Length over the cap, or a running count of the body
chunks that passes it, raises HTTPException(413) on the read that crosses it, so nothing past the cap is
ever held; the app's own handlers answer it (JSON under /api, the page's error for /logs). A body sent with
a Content-Encoding (gzip, ...) is refused with a 415: nothing here decodes request bodies.
The caps are stated in README.md (API section) and in each operation's OpenAPI description.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.estimator.gguf.reader import MAX_HEADER_BYTES
from app.logs import MAX_LOG_BYTES

KIB, MIB = 1 << 10, 1 << 20
# path -> the largest body it reads; a config.json sent inline is held to the Hub client's own 4 MiB cap
# (app/hub/_client.py CONFIG_CAP); a log to MAX_LOG_BYTES plus its JSON/form wrapping (the 4 KiB slack
# app/web/logs_page.py allowed before); GGUF headers, every part together, to one header's cap plus 1 MiB
# of multipart framing and knobs.
BODY_LIMITS: dict[str, int] = {
    "/api/vram": 4 * MIB,
    "/api/weights": 4 * MIB,
    "/api/logs": MAX_LOG_BYTES + 4 * KIB,
    "/logs": MAX_LOG_BYTES + 4 * KIB,
    "/api/gguf": MAX_HEADER_BYTES + MIB,
}
DEFAULT_LIMIT = 64 * KIB  # every other path: pages and GETs read no body


def body_limit(path: str) -> int:
    return BODY_LIMITS.get(path.rstrip("/") or "/", DEFAULT_LIMIT)


def _too_large(path: str, limit: int) -> HTTPException:
    return HTTPException(413, f"request body over {limit:,} bytes, the cap for {path[:100]}")


class BodyLimit:
    """Count the request body as it is received; over the path's cap, a 413 before more is read."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path, limit = scope["path"], body_limit(scope["path"])
        headers = dict(scope.get("headers") or [])
        encoding = headers.get(b"content-encoding", b"identity").decode("latin-1").strip().lower()
        declared = headers.get(b"content-length", b"").decode("latin-1").strip()
        refusal: HTTPException | None = None
        if encoding not in ("", "identity"):
            refusal = HTTPException(415, f"Content-Encoding {encoding[:40]!r} is not accepted: send the body "
                                         "uncompressed")
        elif declared.isdigit() and int(declared) > limit:
            refusal = _too_large(path, limit)
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            if refusal is not None:
                raise refusal
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _too_large(path, limit)
            return message

        await self.app(scope, counted, send)
