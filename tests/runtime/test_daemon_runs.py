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
    with pytest.raises(ValueError, match=r"daemon\.schedule\.exchange: unknown exchange 'MOON'"):
        schedule_from_config(ScheduleConfig(exchange="MOON"))


async def test_a_scheduled_run_is_joe_run_once_in_a_child_process(project: Path) -> None:
    audit = NullAudit()
    run = pipeline_runner("sim", audit)
    await run(ScheduledRun("after_open", datetime(2026, 12, 1, 14, 45, tzinfo=UTC), date(2026, 12, 1)))
    [(kind, payload, _)] = audit.records
    assert kind == "daemon.run_finished" and payload["rc"] == 0 and payload["name"] == "after_open"
    report = Path(payload["report"])
    assert report.exists() and report.is_relative_to(project)
