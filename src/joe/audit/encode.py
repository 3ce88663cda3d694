"""Turning an audit payload into plain, standard JSON — faithfully or not at all.

Rules (each one a past bug): NaN and ±Infinity become the strings ``"NaN"``, ``"Infinity"``,
``"-Infinity"`` (standard JSON has no such numbers); a mapping whose keys collide once rendered as
text (``1`` and ``"1"``) is refused instead of silently keeping one; a circular or absurdly deep
payload raises `AuditPayloadError` (never ``RecursionError``).
"""

from __future__ import annotations

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


def _walk(obj: Any, where: Path, path: tuple[str, ...], active: set[int]) -> Any:
    if obj is None or isinstance(obj, bool | int | str):
        return obj
    if isinstance(obj, float):
        return _float(obj)
    if isinstance(obj, Enum):
        return _walk(obj.value, where, path, active)
    if isinstance(obj, Decimal):
        return str(obj)  # "NaN" / "Infinity" already strings
    if isinstance(obj, datetime | date | time):
        return obj.isoformat()
    if isinstance(obj, bytes | bytearray):
        return bytes(obj).decode("utf-8", "replace")
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
                key = k if isinstance(k, str) else str(_walk(k, where, path, active))
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
    return str(obj)


def _dotted(path: tuple[str, ...]) -> str:
    return "payload" + "".join(f".{p}" for p in path)
