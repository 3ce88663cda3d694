"""The daemon's schedule from config/execution.yaml, and a scheduled run = `joe run --once` in a child."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from joe.config.schema import ScheduleConfig
from joe.core.events import NullAudit
from joe.runtime.daemon_runs import pipeline_runner, schedule_from_config
from joe.runtime.schedule import ScheduledRun


def test_default_schedule_is_pre_open_after_open_and_pre_close_in_new_york_time() -> None:
    runs = schedule_from_config(ScheduleConfig()).runs_on(date(2026, 12, 1))
    assert [(r.name, r.at) for r in runs] == [
        ("pre_open_scan", datetime(2026, 12, 1, 14, 0, tzinfo=UTC)),
        ("after_open", datetime(2026, 12, 1, 14, 45, tzinfo=UTC)),
        ("pre_close", datetime(2026, 12, 1, 20, 45, tzinfo=UTC)),
    ]


def test_null_disables_a_run_and_a_bad_exchange_names_the_key() -> None:
    sched = schedule_from_config(ScheduleConfig(pre_open_scan_min=None, pre_close_min=None))
    assert [r.name for r in sched.runs_on(date(2026, 12, 1))] == ["after_open"]
    with pytest.raises(ValueError, match=r"unknown exchange 'MOON'"):
        ScheduleConfig(exchange="MOON")  # the config model refuses it (exit 2 naming the key)
    with pytest.raises(ValueError, match=r"daemon\.schedule\.exchange: unknown exchange 'MOON'"):
        schedule_from_config(ScheduleConfig.model_construct(exchange="MOON"))  # and the daemon still would


async def test_a_scheduled_run_is_joe_run_once_in_a_child_process(project: Path) -> None:
    audit = NullAudit()
    run = pipeline_runner("sim", audit)
    await run(ScheduledRun("after_open", datetime(2026, 12, 1, 14, 45, tzinfo=UTC), date(2026, 12, 1)))
    [(kind, payload, _)] = audit.records
    assert kind == "daemon.run_finished" and payload["rc"] == 0 and payload["name"] == "after_open"
    report = Path(payload["report"])
    assert report.exists() and report.is_relative_to(project)


def test_no_entry_refuses_those_symbols_by_name_and_enters_the_rest(project: Path) -> None:
    """`joe run --once --no-entry` (what the daemon passes for its stale instruments): a signal on a
    named symbol is refused, audited and said in the report; the other signals are entered."""
    import csv
    import json
    import shutil
    import subprocess
    import sys

    joe = str(Path(sys.executable).with_name("joe"))

    def run(*extra: str) -> tuple[set[str], list[str], str]:
        out = subprocess.run([joe, "run", "--once", *extra], cwd=project, capture_output=True, text=True,
                             timeout=600)  # fmt: skip
        assert out.returncode == 0, out.stderr[-3000:]
        report = Path([ln for ln in out.stdout.splitlines() if ln.startswith("Report: ")][-1][8:]).parent
        with (report / "positions.csv").open() as f:
            held = {row["symbol"] for row in csv.DictReader(f)}
        records = [json.loads(ln) for a in sorted((project / "data/audit").glob("*.jsonl"))
                   for ln in a.read_text().splitlines()]  # fmt: skip
        refused = [r["payload"]["symbol"] for r in records if r["event"] == "run.entry_refused"]
        return held, refused, (report / "report.md").read_text()

    held, refused, _ = run()
    assert len(held) >= 2 and refused == []
    blocked = sorted(held)[0]
    shutil.rmtree(project / "data")  # the same run again from a fresh book: the same signals
    held2, refused2, md = run("--no-entry", f"{blocked},NOTASYMBOL")
    assert refused2 == [blocked] and held2 == held - {blocked}
    assert f"no fresh quotes for {blocked} in the daemon (stale)" in md
