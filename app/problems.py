"""One mapping from errors to what people are told, shared by the API and the `vram` command.

    UnknownModel      -> 404, `detail` is the message             (CLI: exit code 3)
    InvalidRequest    -> 422, `detail` is a list naming the field (CLI: exit code 2)
    HubUnavailable    -> 503, `detail` is the message             (CLI: exit code 4)
    ValidationError   -> 422, pydantic's errors, `loc` prefixed with where the input came from
    Refused           -> the Problem it carries

The API answers `{"detail": problem.detail}` with `problem.status`; the CLI prints `problem.lines()`
(or, with --json, the same `{"detail": ...}` body) and exits with `problem.exit_code`. No web imports.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from app.estimator.errors import InvalidRequest, UnknownChoice, UnknownModel
from app.hub import HubError, HubUnavailable

EXIT_CODES = {404: 3, 422: 2, 503: 4}  # 2 is also what click answers to a malformed command line
# the `type` of a 422 error the estimator raised: a value the request's schema allows but the model, the runtime
# or another field rules out (a format without MoE experts, 2 images for a 1-image model); pydantic's own types
# (value_error, int_parsing, ...) are what the schema itself states
RULE = "request_rule"


@dataclass(frozen=True, repr=False)
class Problem:
    """An error as the API states it: HTTP status and the `detail` of the body."""

    status: int
    detail: str | list[dict[str, Any]]

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.status]

    def lines(self) -> list[str]:
        """The same message for a terminal: one line per error, each naming its field."""
        if isinstance(self.detail, str):
            return [self.detail]
        out = []
        for e in self.detail:
            field = ".".join(map(str, e["loc"][1:]))
            out.append(e["msg"] if not field or e["msg"].startswith(field) else f"{field}: {e['msg']}")
        return out


class Refused(Exception):
    """An answer raised where no estimator error fits (a file that is not there, a malformed option)."""

    def __init__(self, problem: Problem) -> None:
        super().__init__("; ".join(problem.lines()))
        self.problem = problem


def invalid_field(where: str, field: str, msg: str, kind: str = "value_error", value: Any = None) -> Problem:
    """A 422 for one field, in pydantic's error shape."""
    error: dict[str, Any] = {"type": kind, "loc": [where, field], "msg": msg}
    if value is not None:
        error["input"] = value
    return Problem(422, [error])


def problem(exc: Exception, where: str) -> Problem:
    """The answer to `exc`, raised while handling input that came from `where` ("query" or "body").

    Raises:
        TypeError: `exc` is not one of the errors above (a bug, which must stay a 500).
    """
    if isinstance(exc, Refused):
        return exc.problem
    if isinstance(exc, UnknownModel):
        return Problem(404, str(exc))
    if isinstance(exc, HubUnavailable):
        return Problem(503, str(exc))
    kind = "value_error" if isinstance(exc, HubError) else RULE  # the Hub's names have a pattern in the schema
    if isinstance(exc, UnknownChoice):
        p = invalid_field(where, exc.field, exc.message, kind, value=exc.value)
        p.detail[0]["ctx"] = {"allowed": exc.allowed}
        return p
    if isinstance(exc, InvalidRequest):
        return invalid_field(where, exc.field, exc.message, kind)
    if isinstance(exc, ValidationError):
        return Problem(422, [{**e, "loc": [where, *e["loc"]]} for e in exc.errors(include_url=False)])
    raise TypeError(f"no answer defined for {type(exc).__name__}") from exc
