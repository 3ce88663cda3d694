"""A live or shadow run refuses a back-dated --as-of. A live run that fails after it started names its
run: `run.failed` carries the run id of its `run.started`, and the message names that run (hostile
review 2026-12-02: the Capital.com simulator answering `GET /accounts` with wrongly typed fields
failed the run as "(run -; see the report ...)" — no run id, a report that was never written, and a
`run.failed` record without the run's id)."""

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


@pytest.mark.timeout(600)
@pytest.mark.parametrize("mode", ["live", "shadow"])
def test_a_live_or_shadow_run_refuses_a_back_dated_as_of_and_sends_nothing(project: Path, mode: str) -> None:
    """Hostile review 2026-12-02: `TRADING_MODE=live joe run --once --as-of <3 weeks ago>` analysed the old
    bars and sent a live market short now, with the stop and target of three weeks before (the price band
    caught two of the three signals, not the one within 5 %)."""
    import os
    import subprocess

    from runtime.test_live_runs import JOE, get

    (project / "config/execution.yaml").write_text(LIVE_CONFIG)
    with sim("ibkr") as (env, control):
        keep = ("CAPITAL_", "IBKR_", "TRADING_MODE", "JOE_BROKER", "JOE_LIVE_CONFIRM")
        run_env = {k: v for k, v in os.environ.items() if not k.startswith(keep)}
        run_env.update(
            JOE_DATA_DIR=str(project / "data"),
            JOE_CONFIG=str(project / "config/execution.yaml"),
            TRADING_MODE=mode,
            **env,
        )
        out = subprocess.run(
            [JOE, "run", "--once", "--as-of", "2026-11-10"],
            cwd=project,
            env=run_env,
            capture_output=True,
            text=True,
            timeout=400,
        )
        sent = [r for r in get(f"{control}/_sim/requests")["requests"] if r["name"] == "placeOrder"]
    said = " ".join((out.stdout + out.stderr).split())
    assert out.returncode == 2, said[-3000:]
    assert f"--as-of 2026-11-10: a {mode} run trades at ibkr now" in said and "nothing was sent" in said
    assert not sent
