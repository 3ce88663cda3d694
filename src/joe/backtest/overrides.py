"""`--set key=value`: config overrides for one backtest (or one sweep point), checked by the schema.

Keys are dotted paths into `config/execution.yaml` (`risk.max_positions=5`,
`pipeline.max_signals=3`); values are read as YAML scalars (`5`, `0.02`, `true`, `trend`). The merged
config is validated by `ExecutionConfig`, so a typo or an out-of-range value is refused with the key.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import yaml
from pydantic import ValidationError

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


def apply_overrides(config: ExecutionConfig, overrides: Mapping[str, Any]) -> ExecutionConfig:
    """A copy of `config` with each dotted key set; raises `OverrideError` naming the key."""
    if not overrides:
        return config
    data = config.model_dump(mode="python")
    for key, value in overrides.items():
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
