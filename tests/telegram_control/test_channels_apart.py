"""The outside channels translate; neither imports the other (both read `joe.runtime.read_model` and act
through `joe.safety.operator`)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import joe

SRC = Path(joe.__file__).parent


def imported(package: str) -> set[tuple[str, str]]:
    """(file, imported module) for every import in `package`, the deferred ones inside functions too."""
    out = set()
    for path in (SRC / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                out.add((path.name, node.module))
                out.update((path.name, f"{node.module}.{a.name}") for a in node.names)
            elif isinstance(node, ast.Import):
                out.update((path.name, a.name) for a in node.names)
    return out


@pytest.mark.parametrize(("channel", "other"), [("telegram", "joe.web"), ("web", "joe.telegram")])
def test_a_channel_never_imports_the_other(channel: str, other: str) -> None:
    found = imported(channel)
    assert found, f"no imports read from joe/{channel}"
    assert [f for f in found if f[1] == other or f[1].startswith(other + ".")] == []


def test_both_read_the_shared_model() -> None:
    for channel in ("telegram", "web"):
        assert any(m == "joe.runtime.read_model" for _f, m in imported(channel)), channel
