"""Fixtures for `joe doctor`: an isolated project folder configured by environment only."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CLEARED = ("CAPITAL_", "IBKR_", "TELEGRAM_", "DISCORD_", "GEMINI_", "TRADING_MODE", "JOE_")


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project folder whose data folder and config Joe uses (JOE_DATA_DIR, JOE_CONFIG); nothing
    else of the caller's environment that could select a broker, a mode or a channel."""
    for k in list(os.environ):
        if k.startswith(CLEARED):
            monkeypatch.delenv(k)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("JOE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("JOE_CONFIG", str(tmp_path / "execution.yaml"))
    (tmp_path / "execution.yaml").write_text("version: 1\n")
    return tmp_path


def clean_env(**extra: str) -> dict[str, str]:
    """The current environment (already cleaned by `project`) plus `extra`, for a subprocess."""
    env = dict(os.environ)
    env.update(extra)
    return env
