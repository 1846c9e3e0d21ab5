"""Reading a Hugging Face `config.json` dict: typed look-ups that remember which key each value came from.

Every failure is an `InvalidRequest` (a 422) naming the key as `config.<path>`, never a KeyError or
TypeError: configs come from users and from the Hub.
"""

from __future__ import annotations

from typing import Any

from app.estimator.errors import InvalidRequest, UnknownChoice
from app.estimator.limits import LIMITS  # the same bounds hold a GGUF header and a pasted log

__all__ = ["LIMITS", "Cfg", "InvalidConfigValue", "MissingConfigKey", "UnsupportedArchitecture"]
_MISSING = object()

# Keys transformers renamed between 4.x and 5.x (configuration classes' attribute_map and the 5.0 renames):
# either spelling reads alike, the one the adapter names first. transformers 5.25: Qwen3MoeConfig /
# MixtralConfig / GptOssConfig attribute_map num_experts -> num_local_experts; PreTrainedConfig torch_dtype
# -> dtype; Gemma3TextConfig sliding_window_pattern -> _sliding_window_pattern; rope_theta / rope_scaling ->
# rope_parameters (read by helpers that look at both).
ALIASES: dict[str, tuple[str, ...]] = {
    "num_experts": ("num_local_experts",),
    "num_local_experts": ("num_experts",),
    "torch_dtype": ("dtype",),
    "dtype": ("torch_dtype",),
    "sliding_window_pattern": ("_sliding_window_pattern",),
    "_sliding_window_pattern": ("sliding_window_pattern",),
}


class MissingConfigKey(InvalidRequest):
    """A key the architecture's adapter needs is absent."""

    def __init__(self, path: str, model_type: str) -> None:
        super().__init__(f"config.{path}", f"config.{path} is required for model_type {model_type!r}")


class InvalidConfigValue(InvalidRequest):
    """A key holds a value of the wrong type or out of range."""

    def __init__(self, path: str, value: Any, allowed: str) -> None:
        shown = repr(value)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        super().__init__(f"config.{path}", f"config.{path}={shown} is not allowed; allowed: {allowed}")


class UnsupportedArchitecture(UnknownChoice):
    """`model_type` names an architecture the registry has no adapter for."""

    def __init__(self, value: str, allowed: list[str]) -> None:
        super().__init__("config.model_type", value, allowed, "architectures this calculator can import")


class Cfg:
    """A view of one config dict (or its nested `text_config`) that records where values came from.

    `sources` maps a LanguageModel/VisionTower field name to the config key(s) it was read from.
    """

    def __init__(self, data: dict[str, Any], model_type: str, prefix: str = "") -> None:
        self.data = data
        self.model_type = model_type
        self.prefix = prefix
        self.sources: dict[str, str] = {}
        # keys a release may leave out because transformers' configuration class fills them in
        self.class_defaults: dict[str, Any] = {}
        self.class_name = ""

    def with_class_defaults(self, class_name: str, defaults: dict[str, Any]) -> Cfg:
        self.class_name, self.class_defaults = class_name, defaults
        return self

    def sub(self, key: str) -> Cfg:
        """The nested dict under `key` (text_config, vision_config), sharing nothing with this view."""
        value = self.data.get(key)
        if not isinstance(value, dict):
            raise MissingConfigKey(self.prefix + key, self.model_type)
        return Cfg(value, self.model_type, f"{self.prefix}{key}.")

    def spelling(self, key: str) -> str:
        """`key`, or the other transformers spelling of it that this config uses (ALIASES)."""
        if self.data.get(key) is None:
            for alias in ALIASES.get(key, ()):
                if self.data.get(alias) is not None:
                    return alias
        return key

    def get(self, key: str, default: Any = None) -> Any:
        """The value under `key` or its other spelling (dict.get semantics)."""
        return self.data.get(self.spelling(key), default)

    def has(self, key: str) -> bool:
        return self.get(key) is not None

    def raw(self, key: str, default: Any = _MISSING) -> Any:
        value = self.get(key)
        if value is None:
            if default is _MISSING:
                raise MissingConfigKey(self.prefix + key, self.model_type)
            return default
        return value

    def note(self, field: str, how: str) -> None:
        self.sources[field] = how

    def int(self, field: str, *keys: str, default: Any = _MISSING, low: int = 1, high: int = LIMITS["width"]) -> int:
        """The first present key of `keys` as an int in [low, high]; records `field`'s source."""
        for key in (self.spelling(k) for k in keys):
            if self.data.get(key) is not None:
                value = self.data[key]
                if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
                    raise InvalidConfigValue(self.prefix + key, value, "an integer")
                if not low <= value <= high:
                    raise InvalidConfigValue(self.prefix + key, value, f"{low} to {high}")
                self.sources[field] = f"config.json {self.prefix}{key}"
                return int(value)
        if default is _MISSING and keys and keys[0] in self.class_defaults:
            self.sources[field] = f"{self.prefix}{keys[0]} absent: transformers {self.class_name} default"
            return int(self.class_defaults[keys[0]])
        if default is _MISSING:
            raise MissingConfigKey(self.prefix + keys[0], self.model_type)
        if keys:
            self.sources.setdefault(field, f"{self.prefix}{keys[0]} absent: the {self.model_type} default")
        return default

    def bool(self, field: str, key: str, default: bool) -> bool:
        key = self.spelling(key)
        value = self.data.get(key)
        if value is None:
            self.sources.setdefault(field, f"{self.prefix}{key} absent: the {self.model_type} default")
            return default
        if not isinstance(value, bool):
            raise InvalidConfigValue(self.prefix + key, value, "true or false")
        self.sources[field] = f"config.json {self.prefix}{key}"
        return value

    def str(self, key: str, default: str | None = None) -> str | None:
        key = self.spelling(key)
        value = self.data.get(key)
        if value is None:
            return default
        if not isinstance(value, str):
            raise InvalidConfigValue(self.prefix + key, value, "a string")
        return value
