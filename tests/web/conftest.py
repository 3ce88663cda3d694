"""Fixtures for the dashboard: a project folder, its runtime and the app (in process)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from joe.runtime.bootstrap import Runtime, bootstrap
from joe.web.app import create_app
from joe.web.auth import load_or_create_token

CLEARED = ("CAPITAL_", "IBKR_", "TELEGRAM_", "DISCORD_", "GEMINI_", "TRADING_MODE", "JOE_")


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for k in list(os.environ):
        if k.startswith(CLEARED):
            monkeypatch.delenv(k)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("JOE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("JOE_CONFIG", str(tmp_path / "execution.yaml"))
    (tmp_path / "execution.yaml").write_text("version: 1\nai:\n  enabled: false\n")
    return tmp_path


@pytest.fixture
def rt(project: Path) -> Iterator[Runtime]:
    r = bootstrap()
    yield r
    r.audit.close()
    r.close()


@pytest.fixture
def token(rt: Runtime) -> str:
    return load_or_create_token(rt.data_dir)[0]


@pytest.fixture
def client(rt: Runtime, token: str) -> Iterator[TestClient]:
    with TestClient(create_app(rt, token), base_url="http://127.0.0.1") as c:
        yield c


def audit_text(rt: Runtime) -> str:
    return "".join(p.read_text() for p in sorted((rt.data_dir / "audit").glob("*.jsonl")))
