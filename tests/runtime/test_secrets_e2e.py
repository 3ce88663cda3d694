"""Secrets set in the environment never appear in logs, audit records, reports or error text of a run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SECRETS = {
    "CAPITAL_API_KEY": "capkey-SECRET-7f3a9c1e55",
    "CAPITAL_PASSWORD": "hunter2-SECRET-pw-9911",
    "GEMINI_API_KEY": "AIzaSECRET-gemini-0042x",
    "TELEGRAM_BOT_TOKEN": "123456789:AAF-SECRET-telegram-token",
    "DISCORD_WEBHOOK_URL": "http://127.0.0.1:9/api/webhooks/42/SECRET-discord-hook",
}


def _joe(project: Path, *args: str, extra: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CAPITAL_", "IBKR_", "TELEGRAM_", "DISCORD_"))
    }
    env.update(SECRETS)
    env.update(
        JOE_DATA_DIR=str(project / "data"),
        JOE_CONFIG=str(project / "config/execution.yaml"),
        JOE_LOG_LEVEL="DEBUG",
        TELEGRAM_CHAT_ID="42",
        GEMINI_BASE_URL="http://127.0.0.1:9",
        **extra,
    )
    exe = Path(sys.executable).with_name("joe")
    return subprocess.run(
        [str(exe), *args], cwd=project, env=env, capture_output=True, text=True, timeout=300
    )


def _leaks(project: Path, outputs: list[str]) -> list[str]:
    found = []
    texts = list(outputs)
    for f in (project / "data").rglob("*"):
        if f.is_file() and f.suffix != ".db":
            texts.append(f.read_text(errors="replace"))
    for db in (project / "data").rglob("*.db*"):
        texts.append(db.read_bytes().decode("latin-1"))
    for name, value in SECRETS.items():
        for fragment in (value, value.split("/")[-1]):
            if any(fragment in t for t in texts):
                found.append(name)
    return found


def test_no_secret_in_any_output_of_a_run(project: Path) -> None:
    (project / "config/execution.yaml").write_text(
        "pipeline:\n  universe_size: 40\nalerts:\n  max_retries: 0\n"
    )
    ok = _joe(project, "run", "--once", "--push", extra={"TRADING_MODE": "live"})
    # Every (fake, unreachable) channel fails: the run finishes, says so and exits 1.
    assert ok.returncode == 1, ok.stderr[-2000:]
    assert "Push failed" in ok.stderr and "Report: " in ok.stdout
    failing = _joe(
        project,
        "run",
        "--once",
        "--broker",
        "capital",
        extra={"CAPITAL_API_URL": "http://127.0.0.1:9/api/v1", "CAPITAL_DEMO": "true"},
    )
    assert failing.returncode != 0
    mode = _joe(project, "mode", "--json", extra={"TRADING_MODE": "live", "JOE_BROKER": "capital"})
    outputs = [ok.stdout, ok.stderr, failing.stdout, failing.stderr, mode.stdout, mode.stderr]
    assert _leaks(project, outputs) == []
