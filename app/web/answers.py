"""Finished answers of requests that are pure functions of the catalog, kept so the same request is answered
again without recomputing, revalidating or re-rendering it.

An answer is pure when it depends only on the request line and on the catalog, which cannot change while the
process runs (the app loads it once at startup): /api/vram for a catalog model without `config` or `trace`, a
model card page and its HTMX updates. Answers that can depend on something else are never stored: the Hugging
Face Hub (a repo id outside the catalog), an inline config.json, a traced peak, uploads, errors.

The key is the request's exact bytes that the answer depends on: path, raw query string, and the HTMX headers
the representation reads (`HX-Request`, `HX-History-Restore-Request`, `HX-Current-URL`). Two requests with the
same key get byte-identical answers; a hit says so in `X-Answer-Cache: hit`. Bounded in entries and in body
bytes, least recently used out first. One store per app (`app.state.answers`), read and written on the
event loop only.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

Key = tuple[str, bytes, bytes, bytes, bytes]
MAX_ENTRIES = 4096
MAX_BYTES = 32 << 20  # bodies held at most (a card page is ~33 KB, a JSON estimate ~13 KB)
HIT = (b"x-answer-cache", b"hit")
DEBUG = "http.response.debug"


class Stored(Response):
    """A kept answer, sent again with its own status, headers and body; each send gets its own header list.
    `debug`: the template and context a TemplateResponse reports to a client that asks for them (Starlette's
    test client, through the `http.response.debug` extension), kept only when such a client made it."""

    def __init__(self, status_code: int, raw_headers: list[tuple[bytes, bytes]], body: bytes,
                 debug: dict[str, Any] | None = None) -> None:
        self.status_code, self.raw_headers, self.body, self.background = status_code, raw_headers, body, None
        self.debug = debug

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.debug is not None and DEBUG in scope.get("extensions", {}):
            await send({"type": DEBUG, "info": self.debug})  # as starlette.templating._TemplateResponse sends it
        await send({"type": "http.response.start", "status": self.status_code, "headers": [*self.raw_headers, HIT]})
        await send({"type": "http.response.body", "body": self.body})


class Answers:
    """Answers by request key, least recently used out first."""

    def __init__(self, max_entries: int = MAX_ENTRIES, max_bytes: int = MAX_BYTES) -> None:
        self.max_entries, self.max_bytes = max_entries, max_bytes
        self._kept: OrderedDict[Key, Stored] = OrderedDict()
        self._bytes = 0

    @staticmethod
    def key(request: Request) -> Key:
        h = request.headers
        return (request.url.path, request.scope.get("query_string", b""), h.get("hx-request", "").encode(),
                h.get("hx-history-restore-request", "").encode(), h.get("hx-current-url", "").encode())

    def get(self, key: Key) -> Stored | None:
        hit = self._kept.get(key)
        if hit is not None:
            self._kept.move_to_end(key)
        return hit

    def put(self, key: Key, response: Response, scope: Scope | None = None) -> None:
        """Keep a 200 answer whose body is in memory (not a stream, no background task); `scope`, the request's."""
        body = getattr(response, "body", None)
        if response.status_code != 200 or not isinstance(body, bytes) or response.background is not None:
            return
        if len(body) > self.max_bytes // 8 or key in self._kept:
            return
        debug = None
        if scope is not None and DEBUG in scope.get("extensions", {}) and hasattr(response, "template"):
            debug = {"template": response.template, "context": response.context}  # type: ignore[attr-defined]
        self._kept[key] = Stored(response.status_code, list(response.raw_headers), body, debug)
        self._bytes += len(body)
        while len(self._kept) > self.max_entries or self._bytes > self.max_bytes:
            _, old = self._kept.popitem(last=False)
            self._bytes -= len(old.body)

    def __len__(self) -> int:
        return len(self._kept)


async def answer(request: Request, compute: Callable[[], tuple[Response, bool]], on_loop: bool = False) -> Response:
    """The kept answer to this request, else `compute()` (it returns the response and whether it is pure), kept
    when pure. Exceptions propagate to the app's handlers, as before.

    `on_loop`: compute() reads the catalog only (no Hub, no trace): a millisecond or less of CPU, run on the event
    loop, since a hop to the thread pool costs more than that work (two thread switches and the GIL handed over
    under load; bench/bench_load.py) and buys no parallelism under the GIL. Anything that may fetch or run for long
    goes to the thread pool."""
    answers: Answers = request.app.state.answers
    key = answers.key(request)
    hit = answers.get(key)
    if hit is not None:
        return hit
    response, pure = compute() if on_loop else await run_in_threadpool(compute)
    if pure:
        answers.put(key, response, request.scope)
    return response
