"""The URL `joe web` prints is one a browser or script can open as printed: an IPv6 host is written in
brackets (``http://[::1]:PORT/``), as in the daemon's ``--web`` line - ``http://::1:PORT/`` is not a URL."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

JOE = str(Path(sys.executable).with_name("joe"))


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.timeout(120)
@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback on this machine")
def test_the_printed_url_of_an_ipv6_host_opens_as_printed(project: Path) -> None:
    proc = subprocess.Popen([JOE, "web", "--host", "::1", "--port", "0"], cwd=project,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
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
        assert url.startswith("http://[::1]:"), url
        assert httpx.get(url + "health", timeout=10).status_code == 200
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
