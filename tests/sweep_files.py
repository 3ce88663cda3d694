"""Writing a sweep file and asserting `load_spec` refuses it (tests/backtest's sweep tests)."""

from __future__ import annotations

from pathlib import Path

import pytest

from joe.backtest.sweep import SweepError, load_spec
from joe.config.schema import ExecutionConfig


def write_spec(tmp_path: Path, text: str) -> Path:
    """`text` as `tmp_path/sweep.yaml`."""
    p = tmp_path / "sweep.yaml"
    p.write_text(text)
    return p


def refused(tmp_path: Path, text: str) -> str:
    """The `SweepError` message for the sweep file `text` (which must name the file)."""
    with pytest.raises(SweepError, match=r"sweep\.yaml") as exc:
        load_spec(write_spec(tmp_path, text), ExecutionConfig())
    return str(exc.value)
