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
