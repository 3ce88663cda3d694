"""YAML merge keys (`<<: *anchor`) in a sweep file or the config: read as YAML reads them, and a key a merge
brings in that the mapping (or another merged mapping) also gives is a key given twice, refused naming it:
a merge must not smuggle in the last-wins reading the duplicate check refuses."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from joe.backtest.sweep import SweepError, load_spec
from joe.config.loader import ConfigError, parse_execution_config
from joe.config.schema import ExecutionConfig


def _load(tmp_path: Path, text: str) -> object:
    p = tmp_path / "sweep.yaml"
    p.write_text(text)
    return load_spec(p, ExecutionConfig())


def test_a_merge_key_in_a_sweep_file_is_read_as_yaml_reads_it(tmp_path: Path) -> None:
    """It was refused as 'could not determine a constructor for the tag ...merge'."""
    spec = _load(tmp_path, "parameters:\n  <<: {risk.max_positions: [3, 4]}\n  pipeline.max_signals: [2]\n")
    assert [p["risk.max_positions"] for p in spec.points] == [3, 4]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("text", "line", "key", "first", "merge"),
    [
        (  # the merge's value and the mapping's own: YAML keeps the mapping's silently
            "base: &b\n  risk.max_positions: [3]\nparameters:\n  <<: *b\n  risk.max_positions: [30]\n",
            5,
            "parameters.risk.max_positions",
            2,
            4,
        ),
        (  # two merged mappings with one key: YAML keeps the first's silently
            "parameters:\n  <<: [{risk.max_positions: [3]}, {risk.max_positions: [30]}]\n",
            2,
            "parameters.risk.max_positions",
            2,
            2,
        ),
        (  # at the top level
            "metric: sharpe\n<<: {metric: fees}\nparameters: {risk.max_positions: [3]}\n",
            2,
            "metric",
            1,
            2,
        ),
    ],
)
def test_a_key_a_merge_gives_twice_is_refused(
    tmp_path: Path, text: str, line: int, key: str, first: int, merge: int
) -> None:
    with pytest.raises(SweepError) as exc:
        _load(tmp_path, text)
    msg = str(exc.value)
    assert f"line {line}: the key {key!r} is given twice (first on line {first}" in msg, msg
    assert f"merged in by `<<` on line {merge}" in msg and "give the key once" in msg


def test_the_config_reads_a_merge_and_refuses_a_key_it_gives_twice() -> None:
    text = "version: 1\nrisk:\n  <<: {max_positions: 4}\n  risk_per_trade_pct: 0.7\n"
    cfg = parse_execution_config(text)
    assert (cfg.risk.max_positions, cfg.risk.risk_per_trade_pct) == (4, Decimal("0.7"))
    merged = r"risk\.max_positions: .*first on line 3, one of them merged in by `<<`"
    with pytest.raises(ConfigError, match=merged):
        parse_execution_config("version: 1\nrisk:\n  <<: {max_positions: 4}\n  max_positions: 40\n")
