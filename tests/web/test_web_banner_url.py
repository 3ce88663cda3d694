"""The URL `joe web` prints is one a browser or script can open as printed: an IPv6 host is written in
brackets (``http://[::1]:PORT/``), as in the daemon's ``--web`` line - ``http://::1:PORT/`` is not a URL."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest

from daemon_proc import JOE, announced


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
    cmd = [JOE, "web", "--host", "::1", "--port", "0"]
    with announced(cmd, r"Joe dashboard on (\S+)", cwd=project) as web:
        url = web.match.group(1)
        assert url.startswith("http://[::1]:"), url
        assert httpx.get(url + "health", timeout=10).status_code == 200
