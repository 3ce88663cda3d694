"""`joe run --once` outlives its console and its own crash (the CI failure of 2026-12-02: a daemon killed
mid-run broke its child's stderr pipe, the orphan died at its next log line and left its run "running").

* stdout and stderr a pipe nobody reads (``joe run --once | head``, a killed daemon): the run finishes,
  exit 0, its row "ok" and its report written (old code: exit 1 before the run began);
* SIGHUP (the terminal closed) mid-run: no new entry, exits, report and records finish (old code: killed,
  row left "running");
* SIGKILL mid-run: the next run that takes the data folder's lock marks the row "interrupted" and audits
  ``run.interrupted`` (old code: "running" forever)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from runtime.daemon_harness import JOE, audit_records, run_rows


def _wait(pred: Any, proc: subprocess.Popen[bytes], what: str, limit_s: float = 120) -> None:
    deadline = time.monotonic() + limit_s
    while not pred():
        assert proc.poll() is None, f"the run ended before {what}"
        assert time.monotonic() < deadline, f"no {what} in {limit_s} s"
        time.sleep(0.02)


def _started_run(project: Path) -> subprocess.Popen[bytes]:
    """`joe run --once` (console piped) once it has audited ``run.started``: before its data load and
    screening, so a signal now comes before any entry is decided."""
    proc = subprocess.Popen(
        [JOE, "run", "--once"], cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        _wait(lambda: bool(audit_records(project, "run.started")), proc, "run.started")
    except BaseException:
        proc.kill()
        proc.wait(30)
        raise
    return proc


@pytest.mark.timeout(300)
def test_a_run_whose_console_pipe_is_closed_finishes_and_records_itself(project: Path) -> None:
    r, w = os.pipe()
    os.close(r)  # nobody will ever read the console
    try:
        proc = subprocess.run([JOE, "run", "--once"], cwd=project, stdout=w, stderr=w, timeout=240)
    finally:
        os.close(w)
    assert proc.returncode == 0
    [(run_id, status)] = run_rows(project)
    assert status == "ok"
    [finished] = audit_records(project, "run.finished")
    assert finished["ids"]["run_id"] == run_id
    assert list((project / "data/reports" / run_id).glob("report.html"))


@pytest.mark.timeout(300)
def test_sighup_mid_run_stops_entries_and_the_run_still_records_itself(project: Path) -> None:
    proc = _started_run(project)
    try:
        proc.send_signal(signal.SIGHUP)
        out, err = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err.decode()[-2000:]
    assert [s for _r, s in run_rows(project)] == ["ok"]
    denied = [d for d in audit_records(project, "risk.denied") if d["payload"].get("rule") == "run_stopping"]
    assert denied and "SIGHUP" in denied[0]["payload"]["reason"]
    assert not audit_records(project, "order.attempt")  # a fresh book: nothing to exit, and no entry was sent
    assert b"Report: " in out


@pytest.mark.timeout(300)
def test_a_run_killed_half_way_is_marked_interrupted_by_the_next_run(project: Path) -> None:
    proc = subprocess.Popen(
        [JOE, "run", "--once"], cwd=project, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        _wait(lambda: any(s == "running" for _r, s in run_rows(project)), proc, "a run row")
        proc.kill()  # SIGKILL: no handler, no finally
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    [(killed, status)] = run_rows(project)
    assert status == "running"
    second = subprocess.run([JOE, "run", "--once"], cwd=project, capture_output=True, text=True, timeout=240)
    assert second.returncode == 0, second.stderr[-2000:]
    assert f"run {killed} was stopped half-way" in second.stdout + second.stderr
    runs = dict(run_rows(project))
    assert runs.pop(killed) == "interrupted" and list(runs.values()) == ["ok"]
    [note] = audit_records(project, "run.interrupted")
    assert note["ids"]["run_id"] == killed and note["payload"]["mode"] == "paper"
    third = subprocess.run([JOE, "run", "--once"], cwd=project, capture_output=True, text=True, timeout=240)
    assert third.returncode == 0 and "stopped half-way" not in third.stdout + third.stderr
    assert len(audit_records(project, "run.interrupted")) == 1


@pytest.mark.timeout(300)
def test_a_hang_up_delivered_twice_never_aborts_the_run(project: Path) -> None:
    """Hostile review: a closing terminal sends SIGHUP to the foreground job, and the login shell sends
    it to its jobs again as it exits: two hang-ups. The second was taken as "a second SIGTERM" and
    aborted the run half-way (run.failed, exit 1). Only a second SIGTERM aborts; a hang-up never does."""
    proc = _started_run(project)
    try:
        proc.send_signal(signal.SIGHUP)  # the terminal
        time.sleep(0.3)
        proc.send_signal(signal.SIGHUP)  # the shell, passing it on
        out, err = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err.decode()[-2000:]
    assert [s for _r, s in run_rows(project)] == ["ok"]
    assert not audit_records(project, "run.failed")
    assert b"Report: " in out


def test_a_store_failing_while_closing_interrupted_runs_is_a_run_failed_not_a_traceback(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from joe.cli.main import app
    from joe.store import Store, StoreError

    def broken(_self: Store, finished_at: Any = None) -> list[Any]:
        raise StoreError("database is locked (test)")

    monkeypatch.setattr(Store, "interrupt_unfinished_runs", broken)
    r = CliRunner().invoke(app, ["run", "--once"])
    assert r.exit_code == 1, r.output
    assert "Run failed" in r.output and "database is locked (test)" in r.output
    assert r.exception is None or isinstance(r.exception, SystemExit)
    assert [a["payload"]["error"] for a in audit_records(project, "run.failed")] == [
        "StoreError: database is locked (test)"
    ]
