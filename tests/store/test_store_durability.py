"""Durability and concurrency: acknowledged writes survive SIGKILL; several stores share one file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

from sqlalchemy import text

from joe.store import Store, open_store

_CHILD = textwrap.dedent(
    """
    import sys
    from decimal import Decimal
    from datetime import UTC, datetime
    from joe.store import open_store

    store = open_store(sys.argv[1])
    i = 0
    while True:
        store.set_state(f"k{i}", i)
        store.record_equity(datetime.now(UTC), "paper", Decimal(i), Decimal(i))
        print(i, flush=True)  # the acknowledgement: both writes returned
        i += 1
    """
)


def test_acknowledged_writes_survive_sigkill(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'joe.db'}"
    open_store(url).close()
    acked = -1
    for round_ in range(3):
        child = subprocess.Popen([sys.executable, "-c", _CHILD, url], stdout=subprocess.PIPE, text=True)
        assert child.stdout is not None
        try:
            for _ in range(15 + 10 * round_):
                line = child.stdout.readline()
                assert line, "writer exited early"
                acked = int(line)
        finally:
            os.kill(child.pid, signal.SIGKILL)
            child.wait()
            child.stdout.close()
        with open_store(url) as s:
            for i in range(acked + 1):
                assert s.get_state(f"k{i}") == i, f"acknowledged write k{i} lost in round {round_}"
            # Each round starts again at k0, so the curve holds at least every acknowledged point.
            assert len(s.equity_curve("paper")) >= acked + 1
            with s.engine.connect() as conn:
                assert conn.execute(text("PRAGMA integrity_check")).scalar() == "ok"


def test_two_stores_on_one_file_see_each_others_writes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'joe.db'}"
    a, b = open_store(url), open_store(url)
    try:
        a.set_state("from_a", 1)
        assert b.get_state("from_a") == 1
        b.set_state("from_b", 2)
        assert a.get_state("from_b") == 2

        errors: list[BaseException] = []

        def writer(s: Store, prefix: str) -> None:
            try:
                for i in range(40):
                    s.set_state(f"{prefix}{i}", i)
                    assert s.get_state(f"{prefix}{i}") == i
            except BaseException as e:  # collected and asserted below
                errors.append(e)

        threads = [threading.Thread(target=writer, args=(s, p)) for s, p in ((a, "a"), (b, "b"), (a, "c"))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        for s in (a, b):
            assert all(s.get_state(f"{p}{i}") == i for p in "abc" for i in range(40))
    finally:
        a.close()
        b.close()
