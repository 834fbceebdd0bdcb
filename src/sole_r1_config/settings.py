"""One mechanism for settings: `param()` dataclass fields, range checks, and CLI flags derived from them."""
from __future__ import annotations

import argparse
import dataclasses
import typing
from typing import Any, Iterable, Optional, Sequence

import yaml

_REQUIRED = object()


class ConfigError(ValueError):
    """A setting is missing, unknown, of the wrong type or out of range (the message names it)."""


def param(default: Any = _REQUIRED, description: str = "", *, low: Optional[float] = None,
          high: Optional[float] = None, choices: Optional[Sequence[Any]] = None, read_only: bool = True) -> Any:
    """A dataclass field for one setting: default (omit for required), description, range or choices."""
    metadata = {"description": description, "low": low, "high": high, "choices": tuple(choices or ()),
                "read_only": read_only, "required": default is _REQUIRED}
    if default is _REQUIRED:
        return dataclasses.field(metadata=metadata)
    if isinstance(default, (list, dict, tuple)) and not isinstance(default, str):
        return dataclasses.field(default_factory=lambda d=default: type(d)(d), metadata=metadata)
    if dataclasses.is_dataclass(default) and isinstance(default, type):
        return dataclasses.field(default_factory=default, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def range_message(name: str, value: Any, meta: Any) -> str:
    """Why `value` violates the field's choices/range, or "" when it does not."""
    if meta.get("choices") and value not in meta["choices"]:
        return f"parameter '{name}' = {value!r} is not one of {list(meta['choices'])}"
    if value is None or isinstance(value, (list, tuple, str)):
        return ""
    if meta.get("low") is not None and value < meta["low"]:
        return f"parameter '{name}' = {value!r} is below its minimum {meta['low']}"
    if meta.get("high") is not None and value > meta["high"]:
        return f"parameter '{name}' = {value!r} is above its maximum {meta['high']}"
    return ""


def check_ranges(config: Any, prefix: str = "") -> None:
    """Raise ConfigError for the first field (nested dataclasses included) outside its range or choices."""
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if dataclasses.is_dataclass(value):
            check_ranges(value, f"{prefix}{field.name}.")
            continue
        message = range_message(prefix + field.name, value, field.metadata)
        if message:
            raise ConfigError(message)


def from_mapping(cls: type, data: dict[str, Any], what: str) -> Any:
    """Build dataclass `cls` from a dict (YAML, overrides); unknown keys are a ConfigError listing the valid ones."""
    valid = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - valid)
    if unknown:
        raise ConfigError(f"unknown {what} key(s) {unknown}; valid keys: {sorted(valid)}")
    return cls(**data)


def parse_key_values(items: Iterable[str], what: str = "override") -> dict[str, Any]:
    """['batch_size=64', 'lr=1e-4'] -> {'batch_size': 64, 'lr': 0.0001}; values are read as YAML scalars."""
    result: dict[str, Any] = {}
    for item in items:
        if not item:
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{what}: expected name=value, got {item!r}")
        result[key.strip()] = _scalar(value)
    return result


def _scalar(text: str) -> Any:
    """A YAML scalar, with numbers such as `1e-4` (a string to YAML 1.1) read as floats."""
    value = yaml.safe_load(text)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _flag_type(hint: Any) -> tuple[Any, dict]:
    """argparse `type`/`nargs` for a field's type hint (Optional[X] reads as X; lists take several values)."""
    origin = typing.get_origin(hint)
    if origin is typing.Union:
        inner = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        return _flag_type(inner[0]) if len(inner) == 1 else (yaml.safe_load, {})
    if origin in (list, tuple) or hint in (list, tuple):
        args = [a for a in typing.get_args(hint) if a is not Ellipsis]
        return (args[0] if args and args[0] in (int, float, str) else yaml.safe_load), {"nargs": "+"}
    if hint in (int, float, str):
        return hint, {}
    return yaml.safe_load, {}


def add_arguments(parser: argparse.ArgumentParser, cls: type, prefix: str = "",
                  exclude: Sequence[str] = ()) -> None:
    """One `--name` flag per field of `cls` (nested dataclasses as `--outer.inner`), defaults and help from param()."""
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        if not field.init or field.name in exclude:
            continue
        name = prefix + field.name
        hint = hints[field.name]
        if dataclasses.is_dataclass(hint):
            add_arguments(parser, hint, f"{name}.")
            continue
        meta = field.metadata
        flag = "--" + name.replace("_", "-")
        help_text = meta.get("description", "").replace("%", "%%")  # argparse formats help with %
        if hint is bool:
            parser.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS,
                                help=f"{help_text} (default: {_default(field)})")
            continue
        kind, extra = _flag_type(hint)
        required = meta.get("required", False)
        parser.add_argument(flag, dest=name, type=kind, default=argparse.SUPPRESS, required=required,
                            choices=meta.get("choices") or None, metavar=name.rsplit(".", 1)[-1].upper(),
                            help=f"{help_text}" + ("" if required else f" (default: {_default(field)})"), **extra)


def _default(field: dataclasses.Field) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return None


def from_arguments(cls: type, namespace: argparse.Namespace, prefix: str = "", **base: Any) -> Any:
    """Build `cls` from parsed flags (given ones override `base`, the rest keep their defaults); validated."""
    given = vars(namespace)
    values = dict(base)
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        name = prefix + field.name
        if dataclasses.is_dataclass(hints[field.name]):
            nested_base = values.get(field.name)
            nested_base = dataclasses.asdict(nested_base) if dataclasses.is_dataclass(nested_base) else {}
            values[field.name] = from_arguments(hints[field.name], namespace, f"{name}.", **nested_base)
        elif name in given:
            values[field.name] = given[name]
    try:
        config = cls(**values)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"invalid {cls.__name__}: {error}") from error
    check_ranges(config, prefix)
    return config
