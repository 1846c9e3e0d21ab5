"""The command-line options of a VramRequest, generated from its fields.

Every field of `VramRequest` but `model` and `config` (the MODEL argument) becomes an option with the
field's name (`kv_cache` -> `--kv-cache`), description and default, so fields added to the request
model appear here without editing this module. Values stay strings, as in a query string, and the
request model parses them (leniently, like the API's query parameters), so a bad value gets the API's
own message.

    bool                       -> --name/--no-name (unset: the model's default)
    str, int, float, Literal   -> --name TEXT, parsed by the request model
    list[str]                  -> --name TEXT, comma-separated (the request model splits it, as a query's)
    anything else (dict, list) -> --name JSON, a JSON document
"""

from __future__ import annotations

import inspect
import json
import types
from enum import Enum
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import typer
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from app.estimator import VramRequest
from app.problems import Refused, invalid_field

MODEL_FIELDS = ("model", "config")  # the MODEL argument: a name is `model`, a config.json file is `config`
WHERE = "query"  # options are strings, like query parameters; errors name them as the API's GET does
# the API's pointers, as the commands that list the same registries
_POINTERS = {"/api/models": "`vram models`", "/api/quantizations": "`vram formats`", "/api/gpus": "`vram gpus`",
             "/api/runtimes": "`vram formats`"}
_METAVARS = {int: "INTEGER", float: "NUMBER", str: "TEXT"}


def _core(annotation: Any) -> Any:
    """`X | None` -> X; anything else unchanged."""
    if get_origin(annotation) in (Union, types.UnionType):
        rest = [a for a in get_args(annotation) if a is not type(None)]
        if len(rest) == 1:
            return rest[0]
    return annotation


def _text_list(core: Any) -> bool:
    """list[str], its entries possibly Annotated."""
    if get_origin(core) is not list:
        return False
    item = get_args(core)[0] if get_args(core) else None
    return (get_args(item)[0] if get_origin(item) is Annotated else item) is str


def _kind(annotation: Any) -> str:
    core = _core(annotation)
    if core is bool:
        return "flag"
    if core in _METAVARS or get_origin(core) is Literal or (isinstance(core, type) and issubclass(core, Enum)):
        return "text"
    if _text_list(core):
        return "text"
    return "json"


def _choices(annotation: Any) -> list[str]:
    core = _core(annotation)
    if get_origin(core) is Literal:
        return [str(v) for v in get_args(core)]
    if isinstance(core, type) and issubclass(core, Enum):
        return [str(m.value) for m in core]
    return []


def _metavar(annotation: Any) -> str:
    choices = "[" + "|".join(_choices(annotation)) + "]"
    if len(choices) > 2:
        return choices if len(choices) <= 24 else "CHOICE"
    return _METAVARS.get(_core(annotation), "JSON")


def _help(field: FieldInfo) -> str:
    text = field.description or ""
    choices = _choices(field.annotation)
    if len("|".join(choices)) > 22 and not all(c in text for c in choices):
        text += f" One of: {', '.join(choices)}."
    for api, command in _POINTERS.items():
        text = text.replace(f"see {api}", f"see {command}")
    if field.default not in (None, PydanticUndefined):
        value = field.default.value if isinstance(field.default, Enum) else field.default
        text += f" Default: {str(value).lower() if isinstance(value, bool) else value}."
    return text


def option_name(field: str) -> str:
    return "--" + field.replace("_", "-")


def request_parameters(exclude: tuple[str, ...] = (), panel: str = "Request",
                       fields: dict[str, FieldInfo] | None = None) -> list[inspect.Parameter]:
    """One keyword parameter per field of VramRequest (or `fields`) but `exclude` and the ones MODEL
    stands for, as typer reads them."""
    params = []
    for name, field in (fields or VramRequest.model_fields).items():
        if name in MODEL_FIELDS or name in exclude:
            continue
        kind = _kind(field.annotation)
        if kind == "flag":
            flag = option_name(name)
            opt = typer.Option(f"{flag}/--no-{flag[2:]}", help=_help(field), rich_help_panel=panel)
            annotation: Any = Annotated[bool | None, opt]
        else:
            opt = typer.Option(option_name(name), help=_help(field), metavar=_metavar(field.annotation),
                               rich_help_panel=panel)
            annotation = Annotated[str | None, opt]
        params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=annotation))
    return params


def request_data(values: dict[str, Any], fields: dict[str, FieldInfo] | None = None) -> dict[str, Any]:
    """The options given, as the request model validates them (unset ones are left to its defaults).

    Raises:
        Refused: a JSON option that is not JSON (422).
    """
    fields = fields or VramRequest.model_fields
    data: dict[str, Any] = {}
    for name, value in values.items():
        if value is None or name not in fields:
            continue
        if _kind(fields[name].annotation) == "json":
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                msg = f"{option_name(name)} is not JSON: {exc}"
                raise Refused(invalid_field(WHERE, name, msg, value=value)) from exc
        data[name] = value
    return data
