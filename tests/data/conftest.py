"""Fixtures for the data tests' end-to-end runs (`joe run --once --source csv:DIR`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

CONFIG = """\
version: 1
pipeline:
  universe_size: 80
ai:
  enabled: false
"""
CLEAR = (
    "TRADING_MODE",
    "JOE_BROKER",
    "JOE_DB_URL",
    "JOE_LIVE_CONFIRM",
    "GEMINI_API_KEY",
    "TELEGRAM_BOT_TOKEN",
    "TELEGRAM_CHAT_ID",
    "DISCORD_WEBHOOK_URL",
    "CAPITAL_API_KEY",
    "IBKR_PORT",
)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A scratch project folder as cwd with its own data dir and config (paper, no AI, no alerts)."""
    for name in CLEAR:
        monkeypatch.delenv(name, raising=False)
    root = tmp_path / "project"
    (root / "config").mkdir(parents=True)
    (root / "config" / "execution.yaml").write_text(CONFIG)
    monkeypatch.chdir(root)
    monkeypatch.setenv("JOE_DATA_DIR", str(root / "data"))
    monkeypatch.setenv("JOE_CONFIG", str(root / "config" / "execution.yaml"))
    yield root
