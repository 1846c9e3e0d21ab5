"""Reading a log from a request body (text, JSON or form), with the size cap: the one place both the
API and the page do it. The only web-aware module of app.logs."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl, quote

from fastapi import HTTPException, Request
from starlette.concurrency import run_in_threadpool

from app.estimator import FORMATS
from app.logs.compare import LogReport
from app.logs.model import MAX_LOG_BYTES

_OVERRIDES = ("model", "quantization", "vllm_version")  # what a log may lack
BLANK = " \t\n\r\f\v"  # a log of only these is empty: the same in every regex flavour (/openapi.json's pattern)


async def read_log_body(request: Request) -> tuple[str, dict[str, Any]]:
    """(log text, request overrides) from text/plain, JSON {"log": ...} or a form field `log`.

    Raises 413 past MAX_LOG_BYTES and 422 when there is no log."""
    declared = request.headers.get("content-length") or "0"
    if declared.isdigit() and int(declared) > MAX_LOG_BYTES + 4096:
        raise HTTPException(413, f"log longer than {MAX_LOG_BYTES // (1 << 20)} MiB")
    raw = await request.body()
    if len(raw) > MAX_LOG_BYTES + 4096:
        raise HTTPException(413, f"log longer than {MAX_LOG_BYTES // (1 << 20)} MiB")
    # decoding and parsing 2 MiB (a form body: percent-escapes) is CPU work: off the event loop
    return await run_in_threadpool(_log_fields, raw, request.headers.get("content-type", ""))


def _log_fields(raw: bytes, kind: str) -> tuple[str, dict[str, Any]]:
    data: Any = raw.decode("utf-8", "replace")
    if kind.startswith("application/json"):
        try:
            data = json.loads(raw.decode("utf-8") if raw else "null")
        except ValueError as exc:  # JSONDecodeError, or bytes that are not UTF-8
            raise HTTPException(422, "body: invalid JSON; send {\"log\": \"...\"}") from exc
        if not isinstance(data, dict):  # JSON carries an object; bare text goes as text/plain
            raise HTTPException(422, "body: send a JSON object {\"log\": \"...\"}, or the log as text/plain")
    elif kind.startswith("application/x-www-form-urlencoded"):
        data = dict(parse_qsl(data, keep_blank_values=True))
    if isinstance(data, dict):
        text = data.get("log")
        odd = [k for k in _OVERRIDES if data.get(k) is not None and not isinstance(data[k], str)]
        if odd:
            raise HTTPException(422, f"{odd[0]}: a string (a catalog slug, a format slug or a release)")
        overrides = {k: data[k] for k in _OVERRIDES if isinstance(data.get(k), str) and data[k]}
    else:
        text, overrides = data, {}
    if not isinstance(text, str) or not text.strip(BLANK):
        raise HTTPException(422, "log: empty; paste a llama.cpp, Ollama or vLLM startup log (text, or JSON "
                                 "{\"log\": ...})")
    if len(text.encode("utf-8", "replace")) > MAX_LOG_BYTES:
        raise HTTPException(413, f"log longer than {MAX_LOG_BYTES // (1 << 20)} MiB")
    return text, overrides


def test_case(report: LogReport) -> dict[str, Any]:
    """The JSON a developer commits as a case: settings, figures, request and terms (no raw text)."""
    return {"runtime": report.log.runtime, "version": report.log.version, "model": report.model,
            "request": report.request, "settings": {k: s.value for k, s in report.log.settings.items()},
            "figures": [f.model_dump() for f in report.log.figures],
            "terms": [t.model_dump() for t in report.terms], "source": "paste the public URL of this log here"}


def logs_context(catalog: Any, report: LogReport | None, text: str, chosen: dict[str, Any]) -> dict[str, Any]:
    """The /logs page's context: the form state and, after a post, the report and its test-case link."""
    href = ""
    if report is not None:
        href = "data:application/json;charset=utf-8," + quote(json.dumps(test_case(report), indent=1))
    return {"report": report, "text": text, "models": list(catalog.models.values()), "formats": list(FORMATS.values()),
            "chosen": chosen.get("model", ""), "chosen_quant": chosen.get("quantization", ""),
            "chosen_version": chosen.get("vllm_version", ""), "test_case_href": href, "max_log_bytes": MAX_LOG_BYTES}
