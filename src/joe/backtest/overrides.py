"""`--set key=value`: config overrides for one backtest (or one sweep point), checked by the schema.

Keys are dotted paths into `config/execution.yaml` (`risk.max_positions=5`,
`pipeline.max_signals=3`); values are read as YAML scalars (`5`, `0.02`, `true`, `trend`). The merged
config is validated by `ExecutionConfig`, so a typo or an out-of-range value is refused with the key.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from joe.config.loader import DUPLICATE_HINT, DuplicateKeyError, UniqueKeyLoader
from joe.config.schema import ExecutionConfig


class OverrideError(ValueError):
    """An override names no config key, or gives a value the schema refuses.

    `key`: the override at fault (None: not known); `detail`: what is wrong with it, without the
    `--set` wording (a sweep file says it in its own words)."""

    def __init__(self, message: str, key: str | None = None, detail: str | None = None) -> None:
        super().__init__(message)
        self.key = key
        self.detail = detail or message


def parse_set(items: Iterable[str]) -> dict[str, Any]:
    """`["a.b=1", "c=x"]` → `{"a.b": 1, "c": "x"}`; raises `OverrideError` for an item without `=`, a
    key given twice, or a value (YAML) that gives a key twice."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise OverrideError(f"--set {item!r}: expected key=value, e.g. risk.max_positions=5")
        if key in out:  # not last-wins: a script that sets a limit twice has a bug, not a preference
            raise OverrideError(f"--set {key} is given twice; give it once", key)
        try:
            out[key] = yaml.load(raw, Loader=UniqueKeyLoader) if raw.strip() else ""
        except DuplicateKeyError as exc:  # `--set risk={max_positions: 5, max_positions: 50}`
            raise OverrideError(
                f"--set {key}: the value gives the key {exc.key!r} twice; {DUPLICATE_HINT}", key
            ) from None
        except yaml.YAMLError:
            out[key] = raw
    return out


def _is_section(parts: list[str]) -> bool:
    """True when the dotted path names a section of the config (a model, such as `risk`), not a value."""
    model: Any = ExecutionConfig
    for part in parts:
        section = isinstance(model, type) and issubclass(model, BaseModel)
        field = model.model_fields.get(part) if section else None
        if field is None:
            return False
        model = field.annotation
    return isinstance(model, type) and issubclass(model, BaseModel)


def flatten_overrides(items: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    """The overrides as one dotted key per value set: a mapping given for a section (`risk={max_positions:
    5}`) sets the keys it names and keeps the section's others (it replaced the whole section, putting every
    other key of it back to its default). Raises `OverrideError` when two overrides set one key (`risk.
    max_positions=3` and `risk={max_positions: 30}`: one of them would be silently dropped)."""
    out: dict[str, Any] = {}
    given: dict[str, str] = {}  # dotted key -> the override that set it

    def add(key: str, value: Any, origin: str) -> None:
        if isinstance(value, dict) and _is_section(key.split(".")):
            if not value:  # it replaced the section: every key of it back to its default
                detail = f"{key}: an empty mapping sets nothing; name the keys to set ({key}.KEY=VALUE)"
                raise OverrideError(f"--set {detail}", None, detail)
            for k, v in value.items():
                add(f"{key}.{k}" if isinstance(k, str) else f"{key}.{k!r}", v, origin)
            return
        for other, by in given.items():
            if other == key or other.startswith(key + ".") or key.startswith(other + "."):
                shown = max(key, other, key=len)
                by_both = f"by {by!r} and by {origin!r}" if by != origin else f"by {by!r}"
                detail = f"{shown} is set twice, {by_both}; set it once (one value would be dropped)"
                raise OverrideError(f"--set: {detail}", None, detail)
        out[key] = value
        given[key] = origin

    for key, value in items:
        add(key, value, key)
    return out


def apply_overrides(config: ExecutionConfig, overrides: Mapping[str, Any]) -> ExecutionConfig:
    """A copy of `config` with each dotted key set (`flatten_overrides`: a section's mapping sets the keys
    it names); raises `OverrideError` naming the key."""
    if not overrides:
        return config
    data = config.model_dump(mode="python")
    for key, value in flatten_overrides(overrides.items()).items():
        node: Any = data
        parts = key.split(".")
        for depth, part in enumerate(parts):
            if not isinstance(node, dict) or part not in node:
                where = ".".join(parts[:depth]) or "the top level"
                known = ", ".join(sorted(node)) if isinstance(node, dict) else "(not a section)"
                detail = f"no key {part!r} in {where} (known: {known})"
                raise OverrideError(f"--set {key}: {detail}", key, detail)
            if depth == len(parts) - 1:
                node[part] = value
            else:
                node = node[part]
    try:
        return ExecutionConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        detail = f"{where}: {first['msg']}"
        raise OverrideError(f"--set: {detail}", None, detail) from None
