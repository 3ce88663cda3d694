"""`joe telegram` refuses to start without a token or an allowed chat, saying which (exit 2)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from joe.cli.main import app

CLEARED = ("CAPITAL_", "IBKR_", "TELEGRAM_", "DISCORD_", "GEMINI_", "TRADING_MODE", "JOE_")


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for k in list(os.environ):
        if k.startswith(CLEARED):
            monkeypatch.delenv(k)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("JOE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("JOE_CONFIG", str(tmp_path / "execution.yaml"))
    return tmp_path


def test_no_token(project: Path) -> None:
    r = CliRunner().invoke(app, ["telegram", "--allow", "42"])
    assert r.exit_code == 2 and "TELEGRAM_BOT_TOKEN is not set" in r.output


def test_no_allowed_chat(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "424242:cli-test-token-abcdefgh")
    r = CliRunner().invoke(app, ["telegram"])
    assert r.exit_code == 2 and "no chat is allowed" in r.output
    assert "cli-test-token" not in r.output


def test_bad_chat_id(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "424242:cli-test-token-abcdefgh")
    r = CliRunner().invoke(app, ["telegram", "--allow", "42,abc"])
    assert r.exit_code == 2 and "'abc' is not a Telegram chat id" in r.output
