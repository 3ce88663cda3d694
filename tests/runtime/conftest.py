"""Fixtures for end-to-end runs: a scratch project folder with its own data dir and config."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

ENV_TO_CLEAR = (
    "TRADING_MODE",
    "JOE_BROKER",
    "JOE_DB_URL",
    "JOE_LIVE_CONFIRM",
    "CAPITAL_API_KEY",
    "CAPITAL_IDENTIFIER",
    "CAPITAL_PASSWORD",
    "CAPITAL_DEMO",
    "CAPITAL_ACCOUNT_ID",
    "CAPITAL_API_URL",
    "CAPITAL_STREAM_URL",
    "IBKR_HOST",
    "IBKR_PORT",
    "IBKR_CLIENT_ID",
    "IBKR_ACCOUNT",
    "GEMINI_API_KEY",
    "GEMINI_BASE_URL",
    "TELEGRAM_BOT_TOKEN",
    "TELEGRAM_CHAT_ID",
    "TELEGRAM_API_URL",
    "DISCORD_WEBHOOK_URL",
)

SMALL_CONFIG = """\
version: 1
pipeline:
  universe_size: 80
ai:
  enabled: false
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A scratch folder as cwd with JOE_DATA_DIR and JOE_CONFIG pointing inside it."""
    for name in ENV_TO_CLEAR:
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "execution.yaml").write_text(SMALL_CONFIG)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("JOE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("JOE_CONFIG", str(tmp_path / "config" / "execution.yaml"))
    yield tmp_path
