"""A throwaway PostgreSQL server for the store tests: `initdb` + `pg_ctl` in a temporary folder on
a free loopback port. Running as root, the server runs as the `postgres` OS user (PostgreSQL
refuses root). `PgServer.fresh_url()` gives an empty database per test."""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

PG_BIN_DIRS = ("/usr/lib/postgresql/15/bin", "/usr/local/bin", "/usr/bin")


def find_pg_bin() -> Path | None:
    """The folder holding `initdb` and `pg_ctl`, or None if PostgreSQL is not installed."""
    for d in (os.environ.get("JOE_PG_BIN", ""), *PG_BIN_DIRS):
        if d and (Path(d) / "initdb").exists() and (Path(d) / "pg_ctl").exists():
            return Path(d)
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PgServer:
    bin_dir: Path
    root: Path
    port: int
    run_as: str | None
    _n: itertools.count[int] = field(default_factory=itertools.count)

    def _cmd(self, args: Sequence[str]) -> list[str]:
        return ["runuser", "-u", self.run_as, "--", *args] if self.run_as else list(args)

    @classmethod
    def start(cls) -> PgServer:
        bin_dir = find_pg_bin()
        if bin_dir is None:
            raise FileNotFoundError("PostgreSQL binaries (initdb, pg_ctl) not found")
        run_as = "postgres" if os.geteuid() == 0 else None
        root = Path(tempfile.mkdtemp(prefix="joe-pg-"))
        if run_as:
            pw = pwd.getpwnam(run_as)
            os.chown(root, pw.pw_uid, pw.pw_gid)
        srv = cls(bin_dir, root, _free_port(), run_as)
        data = str(root / "data")
        initdb = [str(bin_dir / "initdb"), "-D", data, "-U", "joe", "--auth=trust", "-E", "UTF8", "--no-sync"]
        subprocess.run(srv._cmd(initdb), check=True, capture_output=True, timeout=120)
        log = root / "log"
        # PostgreSQL cannot listen on port 0 and report the port, so the port is found free here and can
        # be taken by another process (an xdist worker's simulator) before the server binds it: then
        # the server exits "could not bind"; it is started again on another port (not a slow machine's
        # symptom, so no longer wait would help).
        for attempt in range(5):
            opts = f"-c listen_addresses=127.0.0.1 -p {srv.port} -c unix_socket_directories={root}"
            opts += " -c fsync=off"
            start = [str(bin_dir / "pg_ctl"), "-D", data, "-o", opts, "-l", str(log), "-w", "-t", "60"]
            start.append("start")
            done = subprocess.run(srv._cmd(start), capture_output=True, timeout=120)
            if done.returncode == 0:
                return srv
            said = log.read_text(errors="replace") if log.exists() else ""
            if "could not bind" not in said or attempt == 4:
                raise RuntimeError(f"pg_ctl start failed on port {srv.port}: {done.stderr!r}\n{said[-2000:]}")
            srv.port = _free_port()
        raise AssertionError("unreachable")

    @property
    def admin_url(self) -> str:
        return f"postgresql+psycopg://joe@127.0.0.1:{self.port}/postgres"

    def fresh_url(self) -> str:
        """A new empty database on this server (one per test)."""
        import psycopg

        name = f"t{os.getpid()}_{next(self._n)}"
        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} user=joe dbname=postgres", autocommit=True
        ) as c:
            c.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql+psycopg://joe@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        stop = [str(self.bin_dir / "pg_ctl"), "-D", str(self.root / "data"), "-m", "immediate", "stop"]
        subprocess.run(self._cmd(stop), capture_output=True, timeout=60)
        shutil.rmtree(self.root, ignore_errors=True)
