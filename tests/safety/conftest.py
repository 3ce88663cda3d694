"""Fixtures for the safety suite: a data folder with its store and anchored audit log."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from joe.audit.anchor import StoreAnchor
from joe.audit.log import AuditLog
from joe.safety.control import SafetyContext
from joe.store import open_store


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An isolated data folder, also what the CLI and `bootstrap` use (JOE_DATA_DIR)."""
    d = tmp_path / "data"
    d.mkdir()
    monkeypatch.setenv("JOE_DATA_DIR", str(d))
    monkeypatch.setenv("JOE_CONFIG", str(tmp_path / "execution.yaml"))
    monkeypatch.delenv("JOE_DB_URL", raising=False)
    monkeypatch.delenv("TRADING_MODE", raising=False)
    return d


@pytest.fixture
def ctx(data_dir: Path) -> Iterator[SafetyContext]:
    store = open_store(data_dir=data_dir)
    audit = AuditLog(data_dir / "audit", fsync=False)
    audit.attach_anchor(StoreAnchor(store))
    yield SafetyContext(store, audit, data_dir)
    audit.close()
    store.close()


def restart(ctx: SafetyContext) -> SafetyContext:
    """A new process on the same data folder: everything reopened from disk."""
    ctx.store.close()
    store = open_store(data_dir=ctx.data_dir)
    audit = AuditLog(ctx.data_dir / "audit", fsync=False)
    audit.attach_anchor(StoreAnchor(store))
    return SafetyContext(store, audit, ctx.data_dir)
