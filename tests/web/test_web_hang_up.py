"""`joe web` stopped by SIGTERM, Ctrl-C (SIGINT) or its terminal closing (SIGHUP) stops in order: exit 0,
``web.stopped`` audited. SIGHUP's default action killed it on the spot, a FLATTEN in flight included;
on SIGTERM/SIGINT uvicorn (0.29+) re-raised the signal after its orderly stop, so Joe died of it
(exit 143 / 130) before auditing ``web.stopped``."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

JOE = str(Path(sys.executable).with_name("joe"))


@pytest.mark.timeout(120)
@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGTERM, signal.SIGINT], ids=["hup", "term", "int"])
def test_joe_web_stops_in_order_on_a_stop_signal(project: Path, sig: signal.Signals) -> None:
    proc = subprocess.Popen([JOE, "web", "--port", "0"], cwd=project, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert proc.stderr is not None
        url = ""
        deadline = time.monotonic() + 60
        while not url:
            line = proc.stderr.readline()
            assert line or proc.poll() is None, "joe web ended before serving"
            assert time.monotonic() < deadline, "joe web never said where it serves"
            if "Joe dashboard on " in line:
                url = line.split("Joe dashboard on ")[1].split()[0]
        assert httpx.get(url + "health", timeout=10).status_code == 200
        proc.send_signal(sig)
        proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    records = [
        json.loads(x)
        for f in sorted((project / "data/audit").glob("*.jsonl"))
        for x in f.read_text().splitlines()
    ]
    stopped = [r for r in records if r["event"] == "web.stopped"]
    assert len(stopped) == 1 and stopped[0]["payload"]["in"] == "web"
