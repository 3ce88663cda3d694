"""Serving the dashboard inside a running event loop: `EmbeddedWeb` (``joe daemon --web``).

The daemon serves `create_app(rt, token, ctx)` on its own asyncio loop, so the pages read the same
runtime and `SafetyContext` the daemon trades with, and a control moves the state the daemon's
`DaemonSafety` reads (re-read at once through `on_control`). Same app, same auth rules as `joe web`.

uvicorn normally takes SIGTERM/SIGINT for itself; here the daemon owns them (its orderly stop), so the
embedded server installs no signal handler and is stopped by the daemon after it has stopped. The
socket is bound here before uvicorn starts, so a busy port is an `OSError` the caller reports, never
uvicorn's ``sys.exit`` inside a task.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import uvicorn

from joe.config.endpoints import is_loopback

__all__ = ["EmbeddedWeb", "QuietServer", "bind", "is_loopback", "url"]

START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0


class QuietServer(uvicorn.Server):
    """A uvicorn server that leaves the signals to its caller (the daemon, or `joe web`'s own handlers).

    uvicorn's own handlers re-raise a caught SIGTERM/SIGINT after its orderly stop (0.29+), so the
    process died of it before anything after `run` (``web.stopped``) happened."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the caller owns SIGTERM/SIGINT; uvicorn must not replace its handlers


LISTEN_BACKLOG = 2048  # uvicorn's default backlog


def bind(host: str, port: int) -> socket.socket:
    """A TCP socket bound to (host, port) and already listening; port 0 picks a free one.

    Listening here, not when uvicorn starts serving, is what makes the printed URL true at once: a
    browser or script that connects the moment ``Joe dashboard on ...`` appears is queued by the
    kernel and answered when the server is up, never refused. Raises OSError (busy port, bad host).
    """
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, _type, _proto, _name, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(LISTEN_BACKLOG)
    except OSError:
        sock.close()
        raise
    return sock


def url(host: str, port: int) -> str:
    """The dashboard's address as a browser takes it: ``http://host:port/``, an IPv6 host in brackets
    (``http://[::1]:8080/``; ``http://::1:8080/`` is no URL)."""
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


@dataclass
class EmbeddedWeb:
    """A running dashboard: where it listens, and how to stop it."""

    server: uvicorn.Server
    task: asyncio.Task[None]
    host: str
    port: int

    @classmethod
    async def start(cls, app: Any, host: str, port: int) -> EmbeddedWeb:
        """Bind, then serve `app` on the running loop until `stop`. Raises OSError when the address
        cannot be bound, RuntimeError when the server does not come up within START_TIMEOUT_S."""
        sock = bind(host, port)
        bound = int(sock.getsockname()[1])
        config = uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,  # an access log would carry query strings; the audit log has what matters
            log_config=None,  # Joe's logging stays as the daemon set it
            lifespan="off",
            timeout_graceful_shutdown=5,
        )
        server = QuietServer(config)
        task = asyncio.create_task(server.serve(sockets=[sock]), name="daemon-web")
        loop = asyncio.get_running_loop()
        end = loop.time() + START_TIMEOUT_S
        while not server.started:
            if task.done():
                sock.close()
                exc = task.exception()
                raise RuntimeError(f"the dashboard did not start: {exc!r}") from exc
            if loop.time() > end:
                # The socket listens since `bind`: left open (with uvicorn's task pending) a client is
                # queued on a port nothing answers until the process ends. Nothing is left behind.
                server.should_exit = True
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
                sock.close()
                raise RuntimeError(f"the dashboard did not start within {START_TIMEOUT_S:.0f} s")
            await asyncio.sleep(0.02)
        return cls(server, task, host, bound)

    @property
    def url(self) -> str:
        return url(self.host, self.port)

    async def stop(self) -> None:
        """Stop serving (open requests get a bounded grace period)."""
        self.server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(self.task), STOP_TIMEOUT_S)
        except TimeoutError:
            self.server.force_exit = True
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task
