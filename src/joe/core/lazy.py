"""Lazy re-exports for a package's `__init__` (PEP 562).

A package that re-exports names from heavy submodules (`joe.store`: SQLAlchemy; `joe.reporting`:
matplotlib; `joe.reporting.alerts`: httpx) would make every import of any of its submodules pay for
them: importing `joe.store.errors` runs `joe/store/__init__.py` first. With `lazy_exports` the package
keeps its public names (`from joe.store import Store` works as before) but imports a name's submodule
only when the name is first asked for. The package lists the same names under `TYPE_CHECKING` for the
type checker; `tests/core/test_lazy_exports.py` checks every name in `__all__` resolves.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any


def lazy_exports(
    package: str, exports: Mapping[str, Iterable[str]]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """`(__getattr__, __dir__)` for `package`, which re-exports the names of `exports` (submodule ->
    its names), each imported from its submodule on first use (then kept as a module attribute)."""
    where = {name: module for module, names in exports.items() for name in names}

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(where))

    return __getattr__, __dir__
