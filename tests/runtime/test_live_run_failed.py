"""A live run that fails after it started names its run: `run.failed` carries the run id of its
`run.started`, and the message names that run (hostile review 2026-12-02: the Capital.com simulator
answering `GET /accounts` with wrongly typed fields failed the run as "(run -; see the report ...)" —
no run id, a report that was never written, and a `run.failed` record without the run's id)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runtime.test_live_runs import LIVE_CONFIG, joe_run, post, sim


@pytest.mark.timeout(600)
def test_a_live_run_failing_on_broker_garbage_names_its_run(project: Path) -> None:
    (project / "config/execution.yaml").write_text(LIVE_CONFIG)
    with sim("capital") as (env, control):
        garbage = {"method": "GET", "path": "/accounts", "kind": "wrong_types"}
        post(f"{control}/_sim/faults", {"name": "garbage", "count": -1, "params": garbage})
        out = joe_run(project, {**env, "TRADING_MODE": "live"})

    said = out.stdout + out.stderr
    assert out.returncode == 1, said[-3000:]
    records = [
        json.loads(line)
        for f in sorted((project / "data/audit").glob("*.jsonl"))
        for line in f.read_text().splitlines()
    ]
    started = [r["ids"]["run_id"] for r in records if r["event"] == "run.started"]
    failed = [r for r in records if r["event"] == "run.failed"]
    assert len(started) == 1 and len(failed) == 1, [r["event"] for r in records]
    assert failed[0]["ids"] == {"run_id": started[0]}
    assert "accounts: unexpected shape" in failed[0]["payload"]["error"]
    assert f"(run {started[0]}; `joe audit tail` shows what reached the broker)" in " ".join(said.split())
    assert "run -;" not in said
