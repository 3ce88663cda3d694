"""`joe mode` says whether each credential is set or missing, through the real process's output
redaction (review r1012 finding 8: "CAPITAL_API_KEY=***" whether set or not), never the value."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

JOE = str(Path(sys.executable).with_name("joe"))
SECRET = "abcdefgh12345678zz"


def _mode(tmp_path: Path, **env: str) -> str:
    ours = ("CAPITAL_", "IBKR_", "GEMINI_", "TELEGRAM_", "DISCORD_", "TRADING_MODE", "JOE_")
    base = {k: v for k, v in os.environ.items() if not k.startswith(ours)}
    out = subprocess.run([JOE, "mode"], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                         env={**base, "JOE_DATA_DIR": str(tmp_path / "data"), **env})  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def _listed(text: str, state: str) -> set[str]:
    line = next(ln for ln in text.splitlines() if ln.startswith(f"credentials {state}:"))
    return {n.strip() for n in line.split(":", 1)[1].split(",")}


def test_a_set_credential_reads_set_and_a_missing_one_missing_never_the_value(tmp_path: Path) -> None:
    unset = _mode(tmp_path)
    assert "CAPITAL_API_KEY" in _listed(unset, "missing") and "***" not in unset.split("credentials set")[1]
    given = _mode(tmp_path, CAPITAL_API_KEY=SECRET, TELEGRAM_BOT_TOKEN=SECRET + "t")
    assert {"CAPITAL_API_KEY", "TELEGRAM_BOT_TOKEN"} <= _listed(given, "set")
    assert "CAPITAL_API_KEY" not in _listed(given, "missing")
    assert SECRET not in given
