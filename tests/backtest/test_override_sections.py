"""`--set` and sweep parameters that give a whole section: `risk={max_positions: 5}` replaced the config's
`risk:` section, so every other risk key silently went back to its default (the config file's own values
dropped), and one key set two ways (`risk.max_positions` and `risk={max_positions: ...}`, or a `--set` key
the sweep file sweeps too) was read last-wins. A section's mapping now sets only the keys it names, and a
key set twice is refused."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from joe.backtest.overrides import OverrideError, apply_overrides, parse_set
from joe.backtest.sweep import SweepError, load_spec
from joe.cli.main import app
from joe.config.schema import ExecutionConfig

MINE = ExecutionConfig.model_validate({"version": 1, "risk": {"max_positions": 7, "risk_per_trade_pct": 0.7}})


def test_a_section_value_sets_the_keys_it_names_and_keeps_the_others() -> None:
    cfg = apply_overrides(MINE, parse_set(["risk={max_positions: 5}"]))
    assert (cfg.risk.max_positions, cfg.risk.risk_per_trade_pct) == (5, Decimal("0.7"))  # was 5, 0.5
    with pytest.raises(OverrideError, match=r"no key 'max_positon' in risk"):
        apply_overrides(MINE, parse_set(["risk={max_positon: 5}"]))
    with pytest.raises(OverrideError, match=r"an empty mapping sets nothing"):
        apply_overrides(MINE, parse_set(["risk={}"]))


@pytest.mark.parametrize(
    "items",
    [
        ["risk.max_positions=3", "risk={max_positions: 30}"],
        ["risk={max_positions: 30}", "risk.max_positions=3"],
    ],
)
def test_a_key_set_as_itself_and_in_its_section_is_refused(items: list[str]) -> None:
    with pytest.raises(OverrideError, match=r"risk\.max_positions is set twice, by 'risk.*' and by 'risk.*'"):
        apply_overrides(MINE, parse_set(items))


def test_a_sweep_file_cannot_set_a_key_twice_through_its_section(tmp_path: Path) -> None:
    """A swept value is one value (test_walk_forward_edges.py): a section is swept key by key."""
    p = tmp_path / "sweep.yaml"
    p.write_text("parameters:\n  risk.max_positions: [3]\n  risk: [{max_positions: 30}]\n")
    with pytest.raises(SweepError, match=r"parameters: risk: each value must be a single value"):
        load_spec(p, ExecutionConfig())


def test_a_set_key_the_sweep_file_sweeps_too_is_refused_before_the_data_is_read(
    project: Path, market_dir: Path
) -> None:
    (project / "sw.yaml").write_text("parameters:\n  risk.max_positions: [3, 5]\n")
    res = CliRunner().invoke(
        app,
        [
            "backtest",
            "--source",
            f"csv:{market_dir}",
            "--sweep",
            "sw.yaml",
            "--set",
            "risk={max_positions: 9}",
        ],
    )
    out = res.output.replace("\n", " ")
    assert res.exit_code == 2, res.output
    assert "risk.max_positions is set twice" in out and "with --set and in the sweep file" in out, out
    assert "sweep: " not in out  # refused before the data load and any cluster
