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


async def test_a_dashboard_that_never_starts_leaves_no_listening_socket(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`EmbeddedWeb.start` giving up (the server not up within its timeout): the socket it bound - and
    listens on - is closed and the serving task ended, so a client is refused, not queued on a port
    nothing will answer (the daemon reports the failure and stops; nothing of the server is left)."""
    import asyncio

    from joe.web import serve

    async def never_starts(self: object, sockets: object = None) -> None:
        await asyncio.Event().wait()

    bound: list[socket.socket] = []

    def spy(host: str, port: int) -> socket.socket:
        bound.append(bind(host, port))
        return bound[-1]

    monkeypatch.setattr(serve.QuietServer, "serve", never_starts)
    monkeypatch.setattr(serve, "START_TIMEOUT_S", 0.05)
    monkeypatch.setattr(serve, "bind", spy)
    before = set(asyncio.all_tasks())
    with pytest.raises(RuntimeError, match="did not start within"):
        await serve.EmbeddedWeb.start(object(), "127.0.0.1", 0)
    port = int(bound[0].getsockname()[1]) if bound[0].fileno() != -1 else None
    if port is not None:  # still open: is anything still listening there?
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
    await asyncio.sleep(0)
    assert not [t for t in asyncio.all_tasks() - before if t is not asyncio.current_task() and not t.done()]
