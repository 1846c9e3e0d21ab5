"""What /openapi.json cannot state, told to schemathesis (`SCHEMATHESIS_HOOKS=tests.schemathesis_hooks`).

JSON Schema has no way to compare two fields, to say which keys a config.json of a given architecture must
hold, or which of the formats, kernels and sizes it lists a given model takes, so schemathesis generates
schema-valid requests the API rightly answers with a 422 naming the rule. Only those 422s are dropped
(schemathesis counts them as "dropped by filter_failure" in its summary): every error in the answer must be
one of these, else the failure stands.

- an error of type `request_rule` (app/problems.py): the estimator's refusal of a value the schema allows but
  the model, the runtime or another field rules out (a format without MoE experts for a dense model, more
  images than the model takes, a config.json that is not one of the importable architectures, `trace` for a
  model with remote code only);
- the request model's own rules between fields: `max_model_len` below `context`, `tensor_parallel_size` x
  `pipeline_parallel_size` x `data_parallel_size` not `gpu_count`, or over 64 GPUs in all when `gpu_count`
  is not given (reported at gpu_count, the product they make), `pipeline_parallel_size` or
  `data_parallel_size` not dividing it (each field's description says so);
- a body with both or neither of `model` and `config`: the schema's top-level `oneOf` says exactly one, but
  schemathesis 4.32 does not apply it to every body it builds (its coverage phase, and form bodies), and
  calls those schema-valid;
- a JSON number with a zero fraction (8192.0) for an integer field: JSON Schema counts it an integer, this
  API's JSON is strict and says so in the request body's description (tests/test_api.py holds it);
- a `file` whose bytes are not a GGUF header (a binary part's content; tests/test_hostile_fuzz.py fuzzes it),
  a `config` whose content is not a config.json (in a form: text that is not a JSON object).
"""

from __future__ import annotations

import atexit
import json
import os
from collections import Counter
from pathlib import Path

import schemathesis

_CROSS_FIELD = (("max_model_len", "is shorter than context"),
                ("tensor_parallel_size", "must equal gpu_count"),
                ("gpu_count", "less than or equal to"),  # typed, it is schema-invalid: this one is tp x pp x dp
                ("pipeline_parallel_size", "must divide gpu_count"), ("data_parallel_size", "must divide gpu_count"))


def rule_of(error: dict) -> str | None:
    """The rule above one 422 error breaks, by name; None for an error the schema should have stated."""
    loc = [str(part) for part in error.get("loc", ())]
    msg = str(error.get("msg", ""))
    value = error.get("input")
    if len(loc) >= 2 and loc[0] == "body" and loc[1].split(".")[0] == "config":
        return "config content"  # a config.json's content (in a form, its JSON text): its architecture's rules
    if error.get("type") == "request_rule":
        return f"request_rule {loc[-1] if loc else ''}"
    if error.get("type") == "int_type" and isinstance(value, float) and value.is_integer():
        return "strict JSON integer"  # 8192.0 is not an integer here
    if loc[:2] == ["body", "file"] and "not a GGUF file" in msg:
        return "GGUF part content"
    if loc == ["body"] and "give exactly one of `model`" in msg:
        return "model/config oneOf"  # both or neither: a body the coverage phase built without the schema's oneOf
    for field, words in _CROSS_FIELD:
        if loc and loc[-1] == field and words in msg:
            return f"between fields {field}"
    return None


def unstatable_rules(status: int, text: str) -> list[str] | None:
    """The rules of a 422 whose every error is a rule the schema cannot state; None for any other answer."""
    if status != 422:
        return None
    try:
        detail = json.loads(text).get("detail")
    except (ValueError, AttributeError):
        return None
    if not isinstance(detail, list) or not detail or not all(isinstance(e, dict) for e in detail):
        return None
    rules = [rule_of(e) for e in detail]
    return None if None in rules else rules  # type: ignore[return-value]


def unstatable_422(status: int, text: str) -> bool:
    """A 422 whose every error is a rule the schema cannot state."""
    return unstatable_rules(status, text) is not None


_DROPPED: Counter[str] = Counter()


@atexit.register
def _report() -> None:  # the breakdown of what was dropped, for the run's log (scripts/schemathesis prints it)
    if _DROPPED and os.environ.get("SCHEMATHESIS_DROP_REPORT"):
        Path(os.environ["SCHEMATHESIS_DROP_REPORT"]).write_text(json.dumps(dict(_DROPPED.most_common()), indent=1))


@schemathesis.hook
def filter_failure(context, failure, case, response) -> bool:  # noqa: ANN001 (schemathesis' hook signature)
    """Keep every failure but a schema-valid request rejected for a rule the schema cannot state."""
    rules = unstatable_rules(response.status_code, response.text) if getattr(failure, "code", "") == "ST202" else None
    if rules is None:
        return True
    _DROPPED.update(set(rules))
    return False
