"""`joe run --once --broker capital|ibkr` end to end: the real CLI against `joe sim capital|ibkr`.

Both sides are separate processes speaking the brokers' wire protocols over 127.0.0.1, exactly as
a user would run them: the simulator started by `joe sim`, Joe configured by environment only.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

from daemon_proc import sim_process

JOE = str(Path(sys.executable).with_name("joe"))


def run_joe(project: Path, env_extra: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CAPITAL_", "IBKR_", "TRADING_MODE"))}
    env.update(
        JOE_DATA_DIR=str(project / "data"), JOE_CONFIG=str(project / "config/execution.yaml"), **env_extra
    )
    return subprocess.run(
        [JOE, "run", "--once", *args], cwd=project, env=env, capture_output=True, text=True, timeout=240
    )


def report_of(out: subprocess.CompletedProcess[str]) -> Path:
    assert out.returncode == 0, out.stderr[-3000:]
    line = [ln for ln in out.stdout.splitlines() if ln.startswith("Report: ")][-1]
    return Path(line.removeprefix("Report: "))


def assert_labelled(project: Path, out: subprocess.CompletedProcess[str], broker: str) -> None:
    """Every label of a broker run names the broker, never the unused default `--source sample`."""
    doc = json.loads((report_of(out).parent / "run.json").read_text())
    assert doc["run"]["source"] == broker
    assert f"opening {broker}" in out.stderr and "sample" not in out.stderr, out.stderr[-2000:]
    started = [
        json.loads(line)
        for f in (project / "data/audit").glob("*.jsonl")
        for line in f.read_text().splitlines()
        if '"run.started"' in line
    ]
    assert [r["payload"]["source"] for r in started] == [broker]
    report = (report_of(out).parent / "report.md").read_text()
    assert f"Data source: {broker}" in report and "sample" not in report.split("Data source:")[1][:40]


def test_run_once_against_capital_simulator(project: Path) -> None:
    with sim_process("capital") as sim:
        port = sim.port
        out = run_joe(
            project,
            {
                "CAPITAL_API_KEY": "sim-api-key",
                "CAPITAL_IDENTIFIER": "trader@example.com",
                "CAPITAL_PASSWORD": "sim-password",
                "CAPITAL_API_URL": f"http://127.0.0.1:{port}",
                "CAPITAL_STREAM_URL": f"ws://127.0.0.1:{port}/connect",
            },
            "--broker",
            "capital",
        )
    html = report_of(out)
    doc = json.loads((html.parent / "run.json").read_text())
    assert doc["run"]["broker"] == "capital"
    assert_labelled(project, out, "capital")
    assert len(doc["top_scores"]) > 0
    audit = "".join(f.read_text() for f in (project / "data/audit").glob("*.jsonl"))
    assert "sim-password" not in audit and "sim-api-key" not in audit
    # Paper prices of Capital instruments sit on their tickSize grid (issue 18, point 6).
    from decimal import Decimal

    from joe.simulators.capital.catalog import BY_EPIC

    with (html.parent / "positions.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:
        tick = BY_EPIC[row["symbol"]].tick
        for key in ("avg_price", "market_price", "stop_loss", "take_profit"):
            if row[key]:
                assert Decimal(row[key]) % tick == 0, (row["symbol"], key, row[key], tick)
        spec = BY_EPIC[row["symbol"]]  # sizes on the broker's size step, never below its minimum
        qty = abs(Decimal(row["quantity"]))
        assert qty % spec.size_increment == 0 and qty >= spec.min_size, (row["symbol"], qty)
    with (html.parent / "signals.csv").open() as fh:
        signals = list(csv.DictReader(fh))
    for sig in signals:  # what the report's signals table shows
        spec = BY_EPIC[sig["symbol"]]
        for key in ("entry", "stop_loss", "take_profit"):
            assert Decimal(sig[key]) % spec.tick == 0, (sig["symbol"], key, sig[key])
        qty = Decimal(sig["quantity"] or 0)
        assert qty % spec.size_increment == 0 and (qty == 0 or qty >= spec.min_size), (sig["symbol"], qty)


def test_run_once_against_ibkr_simulator(project: Path) -> None:
    with sim_process("ibkr") as sim:
        out = run_joe(project, {"IBKR_PORT": str(sim.port)}, "--broker", "ibkr")
    html = report_of(out)
    doc = json.loads((html.parent / "run.json").read_text())
    assert doc["run"]["broker"] == "ibkr"
    assert_labelled(project, out, "ibkr")
    assert len(doc["top_scores"]) > 0
    # Broker history went through the local bar cache (tests/data/test_bar_cache.py counts requests).
    assert len(list((project / "data/cache/bars/ibkr/1d").glob("*.parquet"))) >= len(doc["top_scores"])


def test_live_ibkr_port_in_paper_mode_is_refused(project: Path) -> None:
    out = run_joe(project, {"IBKR_PORT": "7496"}, "--broker", "ibkr")
    assert out.returncode == 3  # refused for safety (issue 10: it was 1)
    assert "7496" in out.stderr
    audit = "".join(f.read_text() for f in (project / "data/audit").glob("*.jsonl"))
    assert "7496" in audit
