"""No secret in any console output, log, audit record, report or exception, for every CLI command —
the failing ones included. Each command runs as a user runs it (a subprocess), with secrets set, and
every byte it printed or left in the data folder is searched (also for the secret's case variants,
URL/JSON-escaped and base64 forms)."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest

SECRETS = {
    "CAPITAL_API_KEY": "capKEY-Secret-7f3a9c1e55",
    "CAPITAL_PASSWORD": 'pa"ss\\wörd-Secret-9911',
    "GEMINI_API_KEY": "AIzaSecret-gemini-0042x",
    "TELEGRAM_BOT_TOKEN": "123456789:AAF-Secret-telegram-token",
    "DISCORD_WEBHOOK_URL": "http://127.0.0.1:9/api/webhooks/42/Secret-discord-hook",
}

# (args, expected exit codes). The secret also appears in arguments, as in the reproduction.
PW = SECRETS["CAPITAL_API_KEY"]
COMMANDS: list[tuple[list[str], set[int]]] = [
    (["version"], {0}),
    (["mode", "--json"], {0}),
    (["mode"], {0}),
    (["status"], {0}),
    (["status", "--json"], {0}),
    (["kill", "--halt", "--reason", f"key {PW} leaked?"], {0}),
    (["resume", "--reason", "x"], {3}),  # too short: refused
    (["resume", "--reason", f"rotated {PW}"], {0}),
    (["audit", "verify"], {0}),
    (["audit", "tail", "--json"], {0}),
    (["audit", "tail"], {0}),
    (["report", "nope"], {1}),
    (["run", "--once", "--source", f"csv:./{PW}"], {1, 2}),
    (["run", "--once", "--broker", "capital"], {1}),
    (["run", "--bogus"], {2}),
    (["kill", "--reason", ""], {2}),
    (["doctor", "--json", "--timeout", "2"], {0, 1}),
    (["doctor", "--offline"], {0, 1}),
]


def _forms(value: str) -> set[str]:
    return {
        value,
        value.upper(),
        value.lower(),
        quote(value, safe=""),
        json.dumps(value)[1:-1],
        base64.b64encode(value.encode()).decode().rstrip("="),
    }


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """One project folder the commands run in one after another (kill, then resume, ...)."""
    tmp_path = tmp_path_factory.mktemp("secrets")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CAPITAL_", "IBKR_", "TELEGRAM_", "DISCORD_", "GEMINI_", "TRADING_", "JOE_"))
    }
    env.update(SECRETS)
    env.update(
        JOE_DATA_DIR=str(tmp_path / "data"),
        JOE_CONFIG=str(tmp_path / "execution.yaml"),
        JOE_LOG_LEVEL="DEBUG",
        TELEGRAM_CHAT_ID="42",
        GEMINI_BASE_URL="http://127.0.0.1:9",
        CAPITAL_IDENTIFIER="someone@example.com",
        CAPITAL_API_URL="http://127.0.0.1:9/api/v1",
    )
    (tmp_path / "execution.yaml").write_text("pipeline:\n  universe_size: 40\nalerts:\n  max_retries: 0\n")
    return tmp_path, env


def _leaks(texts: list[str]) -> list[str]:
    return sorted(
        {
            name
            for name, value in SECRETS.items()
            for frag in (value, value.split("/")[-1])
            for form in _forms(frag)
            if any(form in t for t in texts)
        }
    )


@pytest.mark.parametrize(("args", "codes"), COMMANDS, ids=[" ".join(a)[:40] for a, _ in COMMANDS])
def test_no_secret_reaches_any_output_of_any_command(
    workspace: tuple[Path, dict[str, str]], args: list[str], codes: set[int]
) -> None:
    tmp_path, env = workspace
    exe = Path(sys.executable).with_name("joe")
    proc = subprocess.run(
        [str(exe), *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode in codes, (args, proc.returncode, proc.stderr[-1500:])
    texts = [proc.stdout, proc.stderr]
    for f in (tmp_path / "data").rglob("*"):
        if f.is_file():
            texts.append(
                f.read_bytes().decode("latin-1" if f.suffix.startswith(".db") else "utf-8", "replace")
            )
    assert _leaks(texts) == []


@pytest.mark.parametrize("name", sorted(SECRETS))
def test_the_forms_searched_are_distinct(name: str) -> None:
    assert len(_forms(SECRETS[name])) >= 4  # a search that cannot fail would prove nothing
