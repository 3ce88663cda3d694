"""Shared by the metrics tests: a runtime on a fresh data folder, no broker or channel settings."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from joe.runtime.bootstrap import Runtime, bootstrap

CLEARED = ("CAPITAL_", "IBKR_", "TELEGRAM_", "DISCORD_", "GEMINI_", "TRADING_MODE", "JOE_")


@pytest.fixture
def rt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Runtime]:
    for k in list(os.environ):
        if k.startswith(CLEARED):
            monkeypatch.delenv(k)
    monkeypatch.setenv("JOE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("JOE_CONFIG", str(tmp_path / "execution.yaml"))
    r = bootstrap()
    yield r
    r.audit.close()
    r.close()
