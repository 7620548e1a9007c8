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
import functools
import json
import math
import os
import stat
import sys
import types
import typing
from importlib import resources
from typing import Any

from .errors import ConfigError, UserError

__all__ = ["MAX_INT", "MAX_JSON_BYTES", "check_count", "check_number", "check_range", "difference", "extension",
           "from_plain", "load_preset", "parse_json", "preset_names", "read_json_bytes", "resolve_base", "shown",
           "to_plain"]


#: Keys a configuration object in JSON may carry besides its fields: free text, and the preset it extends.
DESCRIPTION, BASE = "description", "base"
#: The largest integer a configuration holds (a 64-bit integer: every count, seed and index).
MAX_INT = 2**63 - 1
#: The largest JSON file read as a configuration or a manifest: these are a few kilobytes.
MAX_JSON_BYTES = 16 * 2**20


def extension(default: Any = dataclasses.MISSING, *, default_factory: Any = dataclasses.MISSING):
    """A dataclass field that :func:`to_plain` leaves out while it equals its default."""
    return dataclasses.field(default=default, default_factory=default_factory, metadata={"extension": True})


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


_SCALARS = frozenset({float, int, str, bool, type(None)})


@functools.cache
def _plain_fields(cls: type) -> tuple[tuple[str, bool, Any], ...]:
    """(name, whether it is an extension left out at its default, that default) of each field."""
    return tuple((f.name, bool(f.metadata.get("extension")), _default(f) if f.metadata.get("extension") else None)
                 for f in dataclasses.fields(cls))


def to_plain(obj: Any) -> Any:
    """JSON-safe data of a configuration: dataclasses become dicts, tuples lists. (Writing a dataset
    calls it for every scene: the fields of each class are looked at once.)"""
    if type(obj) in _SCALARS:
        return obj
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out = {}
        for name, extension, default in _plain_fields(type(obj)):
            value = getattr(obj, name)
            if extension and value == default:
                continue
            out[name] = to_plain(value)
        return out
    if isinstance(obj, (tuple, list)):
        return [to_plain(v) for v in obj]
    return obj


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _fail(path: str, problem: str) -> typing.NoReturn:
    raise ConfigError(path, problem)


def shown(value: Any) -> str:
    """``value`` for a message: a huge integer as its number of digits, not all of them."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**20:
        return f"a {len(str(abs(value)))}-digit integer"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(shown(v) for v in value) + "]"
    return repr(value) if isinstance(value, str) else str(value)


def _finite(value: Any) -> bool:
    """A number (not a bool) that is finite as a float: an integer beyond 1.8e308 is not."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return abs(value) <= sys.float_info.max if isinstance(value, int) else math.isfinite(value)


def check_number(path: str, value: float, lo: float | None = None, hi: float | None = None,
                 strict_lo: bool = False) -> None:
    """A finite number within [lo, hi] (or (lo, hi] with ``strict_lo``), else a ConfigError naming ``path``
    (and, with both bounds, the range)."""
    span = f" (from {lo} to {hi})" if lo is not None and hi is not None else ""
    if not _finite(value):
        _fail(path, f"must be a finite number{span}, got {shown(value)}")
    if lo is not None and (value < lo or (strict_lo and value == lo)):
        _fail(path, f"must be {'>' if strict_lo else '>='} {lo}{span if hi is not None else ''}, got {shown(value)}")
    if hi is not None and value > hi:
        _fail(path, f"must be <= {hi}{span if lo is not None else ''}, got {shown(value)}")


def check_count(path: str, value: int, lo: int, hi: int) -> None:
    """An integer (not a bool) from ``lo`` to ``hi``, else a ConfigError naming ``path`` and the range."""
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        _fail(path, f"must be an integer from {lo} to {hi}, got {shown(value)}")


def check_range(path: str, value: tuple[float, float], lo: float | None = None, hi: float | None = None) -> None:
    """A (low, high) pair of finite numbers with low <= high within [lo, hi], else a ConfigError."""
    a, b = value
    span = f" (from {lo} to {hi})" if lo is not None and hi is not None else ""
    if not all(_finite(v) for v in value):
        _fail(path, f"must be finite{span}, got {shown(list(value))}")
    if a > b:
        _fail(path, f"lower bound {shown(a)} is above upper bound {shown(b)}")
    if lo is not None and a < lo:
        _fail(path, f"must be >= {lo}{span}, got {shown(list(value))}")
    if hi is not None and b > hi:
        _fail(path, f"must be <= {hi}{span}, got {shown(list(value))}")


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
        _fail(path, f"must be {' or '.join(_describe(a) for a in args)}, got {_brief(value)}")
    if origin is typing.Literal:
        choices = typing.get_args(tp)
        if value not in choices:
            _fail(path, f"must be one of {list(choices)}, got {_brief(value)}")
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
            _fail(path, f"must be true or false, got {_brief(value)}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            _fail(path, f"must be an integer, got {_brief(value)}")
        if not -MAX_INT - 1 <= value <= MAX_INT:
            _fail(path, f"must be a 64-bit integer (at most {MAX_INT} in size), got {shown(value)}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            _fail(path, f"must be a number, got {_brief(value)}")
        if not _finite(value):
            _fail(path, f"must be a finite number, got {shown(value)}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            _fail(path, f"must be a string, got {_brief(value)}")
        return value
    raise TypeError(f"unsupported annotation {tp} at {path or 'config'}")


def _brief(value: Any) -> str:
    """A value of the wrong type for a message: short, whatever its size."""
    if isinstance(value, (dict, list)):
        return f"a JSON {'object' if isinstance(value, dict) else 'list'}"
    text = shown(value)
    return text if len(text) <= 60 else text[:57] + "..."


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


def read_json_bytes(path: str | os.PathLike, what: str) -> bytes:
    """The bytes of a JSON file given by the user: a regular file of at most MAX_JSON_BYTES (a
    device such as /dev/zero, a pipe or a huge file is refused in one line, never read)."""
    try:
        info = os.stat(path)
        if stat.S_ISDIR(info.st_mode):
            raise UserError(f"{what} {path} is a directory, not a file")
        if not stat.S_ISREG(info.st_mode):
            raise UserError(f"{what} {path} is not a regular file (a device, pipe or socket); give a JSON file")
        if info.st_size > MAX_JSON_BYTES:
            raise UserError(f"{what} {path} is {info.st_size / 2**20:.0f} MB; a JSON file here is at most "
                            f"{MAX_JSON_BYTES // 2**20} MB")
        with open(path, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):  # replaced since the check above
                raise UserError(f"{what} {path} is not a regular file; give a JSON file")
            data = fh.read(MAX_JSON_BYTES + 1)
    except FileNotFoundError:
        raise UserError(f"{what} not found: {path}") from None
    except OSError as exc:
        raise UserError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_JSON_BYTES:
        raise UserError(f"{what} {path} is over {MAX_JSON_BYTES // 2**20} MB; a JSON file here is at most that")
    return data


def _read_preset(cls, name: str, what: str) -> tuple[str, Any]:
    """(a name for messages, the JSON data) of a named preset or a JSON file."""
    if name.endswith(".json"):
        text = read_json_bytes(name, what)
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
