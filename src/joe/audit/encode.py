"""Turning an audit payload into plain, standard JSON — faithfully or not at all.

Rules (each one a past bug): NaN and ±Infinity become the strings ``"NaN"``, ``"Infinity"``,
``"-Infinity"`` (standard JSON has no such numbers); a mapping whose keys collide once rendered as
text (``1`` and ``"1"``) is refused instead of silently keeping one; a circular or absurdly deep
payload raises `AuditPayloadError` (never ``RecursionError``); bytes are written whole as
``{"$base64": "..."}`` (never decoded lossily); numpy arrays and scalars become lists and numbers (every
element: a large array is refused by the record-size cap, never truncated by numpy's printing); a lone
surrogate in a string (which UTF-8 cannot hold) is written as its ``\\udXXX`` escape text; an object
whose ``str``/``repr`` raises is `AuditPayloadError` naming where it sits in the payload.
"""

from __future__ import annotations

import base64
import dataclasses
import math
from collections.abc import Mapping
from datetime import date, datetime, time
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any

from joe.audit.errors import AuditPayloadError

MAX_DEPTH = 64


def _float(v: float) -> float | str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "Infinity" if v > 0 else "-Infinity"
    return v


def to_json_tree(obj: Any, where: Path) -> Any:
    """Plain JSON types for `obj` (Decimal, datetime, Enum, dataclasses, pydantic, sets...).

    `where` names the audit directory in errors. Raises `AuditPayloadError` for circular or deeper
    than `MAX_DEPTH` payloads and for keys that collide once rendered as text.
    """
    return _walk(obj, where, (), set())


def _text(s: str) -> str:
    """`s`, with lone surrogates (not encodable as UTF-8) replaced by their escape text."""
    if s.isascii():
        return s
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return s.encode("utf-8", "backslashreplace").decode("utf-8")
    return s


def _walk(obj: Any, where: Path, path: tuple[str, ...], active: set[int]) -> Any:
    if isinstance(obj, str):
        return _text(obj)
    if obj is None or isinstance(obj, bool | int):
        return obj
    if isinstance(obj, float):
        return _float(obj)
    if isinstance(obj, Enum):
        return _walk(obj.value, where, path, active)
    if isinstance(obj, Decimal):
        return str(obj)  # "NaN" / "Infinity" already strings
    if isinstance(obj, datetime | date | time):
        return obj.isoformat()
    if isinstance(obj, bytes | bytearray | memoryview):
        return {"$base64": base64.b64encode(bytes(obj)).decode("ascii")}
    if type(obj).__module__ == "numpy" and hasattr(obj, "tolist"):  # ndarray, np.int64, np.bool_...
        return _walk(obj.tolist(), where, path, active)
    if isinstance(obj, BaseException):
        return f"{type(obj).__name__}: {obj}"
    if len(path) >= MAX_DEPTH:
        raise AuditPayloadError(where, f"payload nested deeper than {MAX_DEPTH} levels at {_dotted(path)}")
    is_container = isinstance(obj, Mapping | list | tuple | set | frozenset) or (
        dataclasses.is_dataclass(obj) and not isinstance(obj, type)
    )
    if is_container:
        if id(obj) in active:
            raise AuditPayloadError(where, f"circular payload: {_dotted(path)} refers back to itself")
        active.add(id(obj))
    try:
        if isinstance(obj, Mapping):
            out: dict[str, Any] = {}
            for k, v in obj.items():
                key = _text(k) if isinstance(k, str) else _as_text(_walk(k, where, path, active), where, path)
                if key in out:
                    raise AuditPayloadError(
                        where,
                        f"payload keys collide at {_dotted(path)}: {k!r} and another key "
                        f"both render as {key!r}",
                    )
                out[key] = _walk(v, where, (*path, key), active)
            return out
        if isinstance(obj, list | tuple):
            return [_walk(v, where, (*path, str(i)), active) for i, v in enumerate(obj)]
        if isinstance(obj, set | frozenset):
            return sorted((_walk(v, where, path, active) for v in obj), key=str)
        if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
            return {
                f.name: _walk(getattr(obj, f.name), where, (*path, f.name), active)
                for f in dataclasses.fields(obj)
            }
    finally:
        if is_container:
            active.discard(id(obj))
    if hasattr(obj, "model_dump"):  # pydantic models
        return _walk(obj.model_dump(mode="json"), where, path, active)
    return _as_text(obj, where, path)


def _as_text(obj: Any, where: Path, path: tuple[str, ...]) -> str:
    """``str(obj)``; an object whose ``__str__``/``__repr__`` raises is refused, naming where it is."""
    try:
        return _text(str(obj))
    except Exception as e:
        raise AuditPayloadError(
            where,
            f"{_dotted(path)} holds a {type(obj).__name__} that cannot be rendered as text "
            f"({type(e).__name__}: {e}); audit a plain value instead",
        ) from e


def _dotted(path: tuple[str, ...]) -> str:
    return "payload" + "".join(f".{p}" for p in path)
