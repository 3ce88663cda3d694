"""`joe status`'s first line says why the mode is what it is, also when nothing needed saying: a live or
shadow mode resolves with no reasons and printed "mode: live ()" (hostile review 2026-12-02)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from joe.cli.main import app


def test_a_mode_without_reasons_says_every_gate_passed(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import joe.safety.status as status

    real = status.status_snapshot

    def as_live(*args: Any, **kw: Any) -> dict[str, Any]:  # what a live runtime's snapshot carries
        return {**real(*args, **kw), "mode": "live", "mode_reasons": []}

    monkeypatch.setattr(status, "status_snapshot", as_live)
    out = CliRunner().invoke(app, ["status"])
    assert out.exit_code == 0, out.output
    assert "mode: live (every gate passed)" in out.output and "()" not in out.output.splitlines()[0]


def test_paper_as_asked_does_not_claim_gates_passed(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """TRADING_MODE=paper needs no gate: its line must not say "every gate passed" while `joe mode` lists
    the live gates as failing (a new user's report)."""
    monkeypatch.setenv("TRADING_MODE", "paper")
    out = CliRunner().invoke(app, ["status"])
    assert out.exit_code == 0, out.output
    first = next(ln for ln in out.output.splitlines() if ln.startswith("mode: "))
    assert first.startswith("mode: paper (") and "every gate passed" not in first, first
    assert "paper needs no gate" in first
