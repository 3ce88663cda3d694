"""The PostgreSQL server the store tests start (pg_server.py): a port taken between finding it free and
the server's bind (another xdist worker's process) is not a failed session, the server moves on."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pg_server
import pytest
from pg_server import PgServer, find_pg_bin


def test_a_port_taken_before_the_server_binds_it_is_left_for_another(monkeypatch: pytest.MonkeyPatch) -> None:
    if find_pg_bin() is None:
        pytest.skip("PostgreSQL binaries (initdb, pg_ctl) not installed; `.ci/run` installs them")
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        taken = other.getsockname()[1]
        real = pg_server._free_port

        def ports() -> Iterator[int]:
            yield taken  # "free" when found, listened on by `other` when the server binds
            while True:
                yield real()

        found = ports()
        monkeypatch.setattr(pg_server, "_free_port", lambda: next(found))
        srv = PgServer.start()
        try:
            assert srv.port != taken
            import psycopg

            with psycopg.connect(f"host=127.0.0.1 port={srv.port} user=joe dbname=postgres") as c:
                assert c.execute("select 1").fetchone() == (1,)
        finally:
            srv.stop()
