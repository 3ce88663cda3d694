"""`joe.web.serve.bind`: the socket is listening when returned, so the URL Joe prints right after it is
true at once — a client that connects before uvicorn serves is queued, not refused (CI saw a refusal
when the dashboard line was read before the server started)."""

from __future__ import annotations

import socket

import pytest

from joe.web.serve import bind


def test_a_client_connecting_before_the_server_serves_is_queued_not_refused() -> None:
    sock = bind("127.0.0.1", 0)
    try:
        port = int(sock.getsockname()[1])
        with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
            client.sendall(b"GET /health HTTP/1.0\r\n\r\n")
            sock.settimeout(5)
            conn, _ = sock.accept()  # what the server will take once it runs
            with conn:
                assert conn.recv(64).startswith(b"GET /health")
    finally:
        sock.close()


def test_a_busy_port_is_an_os_error_and_leaves_nothing_open() -> None:
    first = bind("127.0.0.1", 0)
    try:
        port = int(first.getsockname()[1])
        with pytest.raises(OSError):
            bind("127.0.0.1", port)
    finally:
        first.close()
