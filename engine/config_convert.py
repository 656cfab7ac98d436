"""Builds the frozen config dataclasses from YAML mappings and back: each value
is converted to its field's type (a ConfigError names the key path, the value
and what was expected) and checked against its bound; unknown keys are rejected.
Knows no section of the schema; engine/config.py owns that."""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from typing import Any, Literal

from engine.config_checks import ConfigError, check_field, shown


def type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    if origin in (tuple, list):
        return "a list"
    if origin is dict:
        return "a mapping"
    return {str: "a string", int: "an integer", float: "a number", bool: "true or false"}.get(
        tp, getattr(tp, "__name__", str(tp)))


def convert(value: Any, tp: Any, path: str) -> Any:
    origin = typing.get_origin(tp)
    if origin is Literal:
        if value not in typing.get_args(tp):
            raise ConfigError(f"{path}: {value!r} is not {type_name(tp)}")
        return value
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return convert(value, args[0], path)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected a mapping, got {value!r}")
        return build(tp, value, path)
    if origin is tuple or origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{path}: expected a list, got {value!r}")
        item_tp = typing.get_args(tp)[0]
        return tuple(convert(v, item_tp, f"{path}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected a mapping, got {value!r}")
        key_tp, val_tp = typing.get_args(tp)
        return {str(k): convert(v, val_tp, f"{path}.{k}") for k, v in value.items()}
    if tp is Any:  # free-form (strategy params): the strategy validates them
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: {value!r} is not true or false")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path}: {shown(value)} is not an integer")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{path}: {shown(value)} is not a number")
        try:
            number = float(value)
        except OverflowError:  # an integer beyond float range
            raise ConfigError(f"{path}: {shown(value)} is not a finite number") from None
        if not number - number == 0:  # NaN, inf, -inf
            raise ConfigError(f"{path}: {shown(value)} is not a finite number")
        return number
    if tp is str:
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise ConfigError(f"{path}: {value!r} is not a string")
        return str(value)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        try:
            return tp(value)
        except ValueError:
            raise ConfigError(f"{path}: {value!r} is not one of {[m.value for m in tp]}") from None
    raise ConfigError(f"{path}: unsupported type {tp}")  # a bug in this module


def build(cls: Any, data: dict, path: str) -> Any:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name != "source"}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        where = f"{path}." if path else ""
        raise ConfigError(
            f"{where}{unknown[0]}: unknown key (expected one of: {', '.join(sorted(fields))})")
    kwargs = {}
    for name, f in fields.items():
        key_path = f"{path}.{name}" if path else name
        if name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ConfigError(f"{key_path}: missing (expected {type_name(hints[name])})")
            continue
        value = convert(data[name], hints[name], key_path)
        check_field(cls.__name__, name, value, key_path, hints[name] is int)
        kwargs[name] = value
    return cls(**kwargs)



def to_public_dict(obj: Any) -> Any:
    """The config as plain data for /status. Holds env var *names*, never values;
    local venue account secrets are masked."""
    if dataclasses.is_dataclass(obj):
        out = {}
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if f.name in ("api_secret", "api_key") and isinstance(value, str):
                out[f.name] = "***" if value else ""
            else:
                out[f.name] = to_public_dict(value)
        return out
    if isinstance(obj, (list, tuple)):
        return [to_public_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_public_dict(v) for k, v in obj.items()}
    return obj
