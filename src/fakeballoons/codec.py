"""The one codec between frozen configuration dataclasses and JSON data.

Every configuration of the package (scene, training run, experiment, dataset recipe) is a frozen
dataclass and goes through these functions, so they all behave alike:

- :func:`to_plain` turns one into JSON-safe data; fields marked ``extension`` are left out while
  they hold their default, so adding an extension never changes what older configurations write.
- :func:`from_plain` builds one from JSON data: missing keys take their defaults (a run or a
  dataset written before an option existed reads back with that option's default, with no special
  case anywhere), unknown keys and wrong types are errors, every float must be finite, and every
  error names the field's path (``classes[0].hue_std``, ``train.lr``).
- A dataclass with a ``PRESETS`` class attribute has named presets, JSON files in
  ``fakeballoons/configs/{PRESETS}/``. Wherever such a configuration is read, ``"base": NAME``
  names a preset (or a JSON file) whose values the other keys override, recursively; so a preset
  that differs from another in one value says only that value, and the two cannot drift. A plain
  string in place of such a configuration is short for ``{"base": string}``.
- :func:`difference` says where two configurations differ, for "is this the same run?" checks.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from importlib import resources
from typing import Any

from .errors import ConfigError, UserError

__all__ = ["check_number", "check_range", "difference", "extension", "from_plain", "load_preset", "parse_json",
           "preset_names", "resolve_base", "to_plain"]

#: Keys a configuration object in JSON may carry besides its fields: free text, and the preset it extends.
DESCRIPTION, BASE = "description", "base"


def extension(default: Any = dataclasses.MISSING, *, default_factory: Any = dataclasses.MISSING):
    """A dataclass field that :func:`to_plain` leaves out while it equals its default."""
    return dataclasses.field(default=default, default_factory=default_factory, metadata={"extension": True})


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def to_plain(obj: Any) -> Any:
    """JSON-safe data of a configuration: dataclasses become dicts, tuples lists."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out = {}
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if f.metadata.get("extension") and value == _default(f):
                continue
            out[f.name] = to_plain(value)
        return out
    if isinstance(obj, (tuple, list)):
        return [to_plain(v) for v in obj]
    return obj


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _fail(path: str, problem: str) -> typing.NoReturn:
    raise ConfigError(path, problem)


def check_number(path: str, value: float, lo: float | None = None, hi: float | None = None,
                 strict_lo: bool = False) -> None:
    """A finite number within [lo, hi] (or (lo, hi] with ``strict_lo``), else a ConfigError naming ``path``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        _fail(path, f"must be a finite number, got {value!r}")
    if lo is not None and (value < lo or (strict_lo and value == lo)):
        _fail(path, f"must be {'>' if strict_lo else '>='} {lo}, got {value}")
    if hi is not None and value > hi:
        _fail(path, f"must be <= {hi}, got {value}")


def check_range(path: str, value: tuple[float, float], lo: float | None = None, hi: float | None = None) -> None:
    """A (low, high) pair of finite numbers with low <= high within [lo, hi], else a ConfigError."""
    a, b = value
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value):
        _fail(path, f"must be finite, got {list(value)}")
    if a > b:
        _fail(path, f"lower bound {a} is above upper bound {b}")
    if lo is not None and a < lo:
        _fail(path, f"must be >= {lo}, got {list(value)}")
    if hi is not None and b > hi:
        _fail(path, f"must be <= {hi}, got {list(value)}")


def from_plain(tp: Any, value: Any, path: str = "") -> Any:
    """An instance of the annotated type ``tp`` from JSON data; errors name ``path``."""
    if dataclasses.is_dataclass(tp):
        if isinstance(value, str) and getattr(tp, "PRESETS", None):
            value = {BASE: value}  # a preset's name (or JSON file) stands for the preset
        if not isinstance(value, dict):
            _fail(path, f"must be an object, got {type(value).__name__}")
        if BASE in value and getattr(tp, "PRESETS", None):  # only configurations with presets extend one
            value = resolve_base(tp, value, path)
        hints = typing.get_type_hints(tp)
        names = [f.name for f in dataclasses.fields(tp) if f.init]
        unknown = sorted(set(value) - set(names) - {DESCRIPTION})
        if unknown:
            raise ConfigError(_join(path, unknown[0]), f"known keys here: {', '.join(sorted(names))}", unknown=True)
        kwargs = {k: from_plain(hints[k], v, _join(path, k)) for k, v in value.items() if k != DESCRIPTION}
        try:
            return tp(**kwargs)
        except ConfigError as exc:
            raise exc.under(path) from None
        except TypeError as exc:  # a required field is missing
            _fail(path, str(exc))
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None and len(args) < len(typing.get_args(tp)):
            return None
        if len(args) == 1:
            return from_plain(args[0], value, path)
        # A JSON object can only be one of the dataclasses; anything else one of the plain types (and a
        # string also a preset of a configuration class).
        candidates = [a for a in args if dataclasses.is_dataclass(a) == isinstance(value, dict)
                      or (isinstance(value, str) and getattr(a, "PRESETS", None))]
        for candidate in candidates[:-1]:
            try:
                return from_plain(candidate, value, path)
            except ConfigError:
                continue
        if candidates:
            return from_plain(candidates[-1], value, path)
        _fail(path, f"must be {' or '.join(_describe(a) for a in args)}, got {value!r}")
    if origin is typing.Literal:
        choices = typing.get_args(tp)
        if value not in choices:
            _fail(path, f"must be one of {list(choices)}, got {value!r}")
        return value
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(value, list):
            _fail(path, f"must be a list, got {type(value).__name__}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(from_plain(args[0], v, f"{path}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            _fail(path, f"must be a list of {len(args)} values, got {len(value)}")
        return tuple(from_plain(a, v, f"{path}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
    if tp is bool:
        if not isinstance(value, bool):
            _fail(path, f"must be true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            _fail(path, f"must be an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            _fail(path, f"must be a number, got {value!r}")
        if not math.isfinite(value):
            _fail(path, f"must be a finite number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            _fail(path, f"must be a string, got {value!r}")
        return value
    raise TypeError(f"unsupported annotation {tp} at {path or 'config'}")


def _describe(tp: Any) -> str:
    if dataclasses.is_dataclass(tp):
        return "an object"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(tp, str(tp))


# ----------------------------------------------------------------------------- presets


def _preset_folder(cls):
    folder = getattr(cls, "PRESETS", None)
    if folder is None:
        raise TypeError(f"{cls.__name__} has no presets")
    return resources.files("fakeballoons.configs") / folder


def preset_names(cls) -> list[str]:
    """Names of the presets shipped for configuration class ``cls``."""
    return sorted(p.name[:-5] for p in _preset_folder(cls).iterdir() if p.name.endswith(".json"))


def parse_json(text: str | bytes, where: str) -> Any:
    """JSON data of ``text``; invalid JSON is a one-line ConfigError naming ``where``."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ConfigError(None, f"{where} is not valid JSON: {exc}") from None


def _read_preset(cls, name: str, what: str) -> tuple[str, Any]:
    """(a name for messages, the JSON data) of a named preset or a JSON file."""
    if name.endswith(".json"):
        try:
            with open(name, "rb") as fh:
                text = fh.read()
        except FileNotFoundError:
            raise UserError(f"{what} not found: {name}") from None
        except OSError as exc:
            raise UserError(f"cannot read {what} {name}: {exc.strerror or exc}") from None
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise UserError(f"{what} {name} is not UTF-8 text") from None
    else:
        path = _preset_folder(cls) / f"{name}.json"
        if not path.is_file():
            raise UserError(f"unknown {what} {name!r}; choose from {', '.join(preset_names(cls))} or a .json file")
        text = path.read_text()
    data = parse_json(text, f"{what} {name}")
    if not isinstance(data, dict):
        raise UserError(f"{what} {name} must hold a JSON object, got {type(data).__name__}")
    return name, data


def _field_types(tp: Any) -> dict[str, Any]:
    """The annotated type of each field of dataclass ``tp`` ({} for anything else)."""
    if not (dataclasses.is_dataclass(tp) and isinstance(tp, type)):
        return {}
    return typing.get_type_hints(tp)


def _config_class(tp: Any) -> Any:
    """The configuration dataclass a value of annotated type ``tp`` is (``X``, ``X | None``), or None."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        classes = [a for a in typing.get_args(tp) if dataclasses.is_dataclass(a)]
        plain = [a for a in typing.get_args(tp) if a is not type(None) and not dataclasses.is_dataclass(a)]
        return classes[0] if len(classes) == 1 and not plain else None
    return tp if dataclasses.is_dataclass(tp) else None


def _merge(base: dict, over: dict, tp: Any = None) -> dict:
    """``over`` on top of ``base``: nested objects merge key by key, anything else is replaced.

    With ``tp``, the configuration class both describe, a preset's name in place of a nested
    configuration with presets stands for ``{"base": NAME}`` on either side, so
    ``{"downstream": {"lr": 0.004}}`` over ``{"downstream": "real"}`` is the ``real`` preset with
    that learning rate, not the defaults with it."""
    out = dict(base)
    hints = _field_types(tp)
    for key, value in over.items():
        sub = _config_class(hints.get(key))
        presets = sub is not None and getattr(sub, "PRESETS", None)
        below = out.get(key)
        if presets and isinstance(below, str) and isinstance(value, dict) and BASE not in value:
            below = {BASE: below}
        if isinstance(value, dict) and isinstance(below, dict) and BASE not in value:
            out[key] = _merge(below, value, sub)
        else:
            out[key] = value
    return out


def resolve_base(cls, data: dict, path: str = "", _seen: tuple[str, ...] = ()) -> dict:
    """``data`` with its ``"base"`` preset expanded (recursively) underneath its own keys."""
    name = data[BASE]
    if not isinstance(name, str):
        _fail(_join(path, BASE), f"must name a preset or a .json file, got {name!r}")
    if name in _seen:
        _fail(_join(path, BASE), f"presets extend each other in a cycle: {' -> '.join((*_seen, name))}")
    try:
        _, base = _read_preset(cls, name, f"{cls.__name__} preset")
    except UserError as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(_join(path, BASE), str(exc)) from None
    if BASE in base:
        base = resolve_base(cls, base, path, (*_seen, name))
    own = {k: v for k, v in data.items() if k != BASE}
    return _merge({k: v for k, v in base.items() if k != DESCRIPTION}, own, cls)


def load_preset(cls, name: str, what: str = "preset"):
    """Configuration ``cls`` from a named preset (``fakeballoons/configs/{cls.PRESETS}/NAME.json``)
    or a JSON file path; keys it leaves out take the defaults, ``"base"`` extends another preset."""
    label, data = _read_preset(cls, name, what)
    try:
        return from_plain(cls, data)
    except ConfigError as exc:
        raise ConfigError(exc.field, f"{exc.problem} (in {what} {label})", unknown=exc.unknown) from None


# ----------------------------------------------------------------------------- comparison


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _first_difference(a: Any, b: Any, path: str, ignore: frozenset[str]) -> str | None:
    if path in ignore:
        return None
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            found = _first_difference(a.get(key), b.get(key), _join(path, key), ignore)
            if found:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            found = _first_difference(x, y, f"{path}[{i}]", ignore)
            if found:
                return found
        return None
    if a != b:
        return f"{path or 'config'} is {_short(b)} there, {_short(a)} here"
    return None


def difference(here: Any, there: Any, ignore: typing.Iterable[str] = ()) -> str | None:
    """Where two configurations of one class differ, as ``"train.lr is 0.004 there, 0.002 here"``,
    or None. Fields are compared with every default filled in, so a field one of them predates
    counts as its default; paths in ``ignore`` are skipped."""
    return _first_difference(_full_plain(here), _full_plain(there), "", frozenset(ignore))


def _full_plain(obj: Any) -> Any:
    """Like :func:`to_plain`, extension fields included."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _full_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (tuple, list)):
        return [_full_plain(v) for v in obj]
    return obj
