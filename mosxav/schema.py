"""Typed configuration: a dataclass declares the keys, their types and defaults once; mappings read
from YAML are checked against it at every depth.

Every config in MOSXAV-Bench (the run config, each method's options) is a dataclass read through
``from_mapping``. An unknown key, a missing required key or a value of the wrong type is one
``ConfigError`` naming the key's full path (``method_options.diffproto.denoiser_wdith``), the file it
came from and the keys that are known there, so a typo never passes silently.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar, Union

from mosxav.errors import DataError

T = TypeVar("T")


class ConfigError(DataError):
    """A config value that does not fit its schema; the message names the key and the file."""

    def __init__(self, source: str | Path, key: str, problem: str) -> None:
        self.key = key
        super().__init__(source, f"{key}: {problem}" if key else problem)


def _type_name(kind: Any) -> str:
    origin = typing.get_origin(kind)
    if origin is Literal:
        return " or ".join(repr(v) for v in typing.get_args(kind))
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(kind))
    if origin in (list, tuple):
        return f"a list of {_type_name(typing.get_args(kind)[0])}"
    if origin is dict:
        return f"a mapping to {_type_name(typing.get_args(kind)[1])}"
    if dataclasses.is_dataclass(kind):
        return "a mapping"
    if kind is type(None):
        return "null"
    if kind is Any:
        return "any value"
    return getattr(kind, "__name__", str(kind))


def _convert(value: Any, kind: Any, key: str, source: str | Path) -> Any:
    """``value`` checked against the annotation ``kind`` (ints are accepted where floats are)."""
    origin = typing.get_origin(kind)
    wrong = ConfigError(source, key, f"{value!r} is not {_type_name(kind)}")
    if kind is Any:
        return value
    if origin in (Union, types.UnionType):
        for option in typing.get_args(kind):
            try:
                return _convert(value, option, key, source)
            except ConfigError as exc:
                if dataclasses.is_dataclass(option) and isinstance(value, Mapping):
                    raise exc  # the value is a mapping meant for this schema: its own error says more
        raise wrong
    if origin is Literal:
        if value in typing.get_args(kind):
            return value
        raise wrong
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise wrong
        item = typing.get_args(kind)[0]
        converted = [_convert(v, item, f"{key}[{i}]", source) for i, v in enumerate(value)]
        return tuple(converted) if origin is tuple else converted
    if origin is dict:
        if not isinstance(value, Mapping):
            raise wrong
        item = typing.get_args(kind)[1]
        return {str(k): _convert(v, item, f"{key}.{k}", source) for k, v in value.items()}
    if dataclasses.is_dataclass(kind):
        if isinstance(value, kind):
            return value
        if not isinstance(value, Mapping):
            raise wrong
        return from_mapping(kind, value, source, prefix=key)
    if kind is type(None):
        if value is None:
            return None
        raise wrong
    if kind is bool:
        if isinstance(value, bool):
            return value
        raise wrong
    if kind is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise wrong
    if kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise wrong
    if kind is str:
        if isinstance(value, str):
            return value
        raise wrong
    raise TypeError(f"schema type {kind!r} of {key} is not supported")


def fields_of(schema: type) -> dict[str, dataclasses.Field]:
    """The schema's fields by name."""
    return {f.name: f for f in dataclasses.fields(schema)}


def from_mapping(
    schema: type[T], data: Mapping[str, Any] | None, source: str | Path = "<config>", prefix: str = ""
) -> T:
    """An instance of the dataclass ``schema`` from ``data``, every key and type checked.

    ``source`` (a file path or a description) and ``prefix`` (the key path of ``data`` inside its file)
    only make errors precise.
    """
    data = {} if data is None else data
    where = f"{prefix}." if prefix else ""
    if not isinstance(data, Mapping):
        raise ConfigError(source, prefix, f"expected a mapping of {sorted(fields_of(schema))}, got {data!r}")
    known = fields_of(schema)
    unknown = [k for k in data if k not in known]
    if unknown:
        raise ConfigError(source, f"{where}{unknown[0]}", f"unknown key; known keys here: {sorted(known)}")
    hints = typing.get_type_hints(schema)
    values = {}
    for name, field in known.items():
        if not field.init:
            continue
        if name in data:
            values[name] = _convert(data[name], hints[name], f"{where}{name}", source)
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise ConfigError(source, f"{where}{name}", "required key is missing")
    return schema(**values)


def to_mapping(config: Any) -> dict[str, Any]:
    """A dataclass as plain YAML-ready types (tuples become lists)."""

    def plain(value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return plain(dataclasses.asdict(config))
