"""`joe web` stopped by SIGTERM, Ctrl-C (SIGINT) or its terminal closing (SIGHUP) stops in order: exit 0,
``web.stopped`` audited. SIGHUP's default action killed it on the spot, a FLATTEN in flight included;
on SIGTERM/SIGINT uvicorn (0.29+) re-raised the signal after its orderly stop, so Joe died of it
(exit 143 / 130) before auditing ``web.stopped``."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import httpx
import pytest

from daemon_proc import JOE, announced


@pytest.mark.timeout(120)
@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGTERM, signal.SIGINT], ids=["hup", "term", "int"])
def test_joe_web_stops_in_order_on_a_stop_signal(project: Path, sig: signal.Signals) -> None:
    with announced([JOE, "web", "--port", "0"], r"Joe dashboard on (\S+)", cwd=project) as web:
        assert httpx.get(web.match.group(1) + "health", timeout=10).status_code == 200
        proc = web.proc
        proc.send_signal(sig)
        proc.wait(60)
    assert proc.returncode == 0
    records = [
        json.loads(x)
        for f in sorted((project / "data/audit").glob("*.jsonl"))
        for x in f.read_text().splitlines()
    ]
    stopped = [r for r in records if r["event"] == "web.stopped"]
    assert len(stopped) == 1 and stopped[0]["payload"]["in"] == "web"
