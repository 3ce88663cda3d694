"""Versioned migrations: idempotence, new versions applied once, atomicity, refusal of newer schemas."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import Connection, select, text

from joe.core.clock import utcnow
from joe.store import SchemaError, migrate, open_store
from joe.store import migrations as mig
from joe.store.schema import JOE_TABLES, schema_version


def _schema_dump(url: str) -> tuple[list[tuple[str, str]], list[tuple[int, str]]]:
    s = open_store(url)
    try:
        with s.engine.connect() as conn:
            objects = [
                (r[0], r[1])
                for r in conn.execute(
                    text("SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY type, name")
                )
            ]
            versions = [
                (r[0], r[1])
                for r in conn.execute(select(schema_version.c.version, schema_version.c.description))
            ]
    finally:
        s.close()
    return objects, versions


def test_v1_creates_every_table(tmp_path: Path) -> None:
    s = open_store(data_dir=tmp_path)
    with s.engine.connect() as conn:
        names = {r[0] for r in conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'table'"))}
    assert names >= JOE_TABLES
    assert {
        "orders",
        "order_events",
        "fills",
        "positions",
        "signals",
        "pipeline_runs",
        "paper_account",
        "equity_history",
        "kv_state",
        "schema_version",
    } <= names
    assert s.schema_version() == 1


def test_migrating_again_changes_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'joe.db'}"
    first = _schema_dump(url)
    s = open_store(url)
    assert migrate(s.engine) == []
    s.close()
    assert _schema_dump(url) == first
    assert [v for v, _ in first[1]] == [1]


def test_a_new_migration_is_applied_exactly_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'joe.db'}"
    open_store(url).close()  # a v1 database
    calls: list[int] = []

    def v2(conn: Connection) -> None:
        calls.append(2)
        conn.execute(text("ALTER TABLE kv_state ADD COLUMN note TEXT"))

    monkeypatch.setattr(mig, "MIGRATIONS", [*mig.MIGRATIONS, mig.Migration(2, "kv note", v2)])
    s = open_store(url)
    assert s.schema_version() == 2 and calls == [2]
    assert migrate(s.engine) == []
    s.close()
    with open_store(url) as again, again.engine.connect() as conn:
        cols = {r[1] for r in conn.execute(text("PRAGMA table_info(kv_state)"))}
    assert calls == [2]
    assert "note" in cols


def test_a_fresh_database_replays_all_versions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mig, "MIGRATIONS", [*mig.MIGRATIONS, mig.Migration(2, "noop", lambda conn: None)])
    s = open_store(data_dir=tmp_path)
    with s.engine.connect() as conn:
        assert [
            r[0] for r in conn.execute(select(schema_version.c.version).order_by(schema_version.c.version))
        ] == [
            1,
            2,
        ]


def test_a_failing_migration_leaves_the_previous_version_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'joe.db'}"
    open_store(url).close()

    def broken(conn: Connection) -> None:
        conn.execute(text("CREATE TABLE half_done (id INTEGER)"))
        raise RuntimeError("boom in the middle of v2")

    monkeypatch.setattr(mig, "MIGRATIONS", [*mig.MIGRATIONS, mig.Migration(2, "broken", broken)])
    with pytest.raises(RuntimeError, match="boom"):
        open_store(url)
    monkeypatch.undo()
    s = open_store(url)
    with s.engine.connect() as conn:
        tables = {r[0] for r in conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'table'"))}
    assert "half_done" not in tables  # the DDL was rolled back with the failed step
    assert s.schema_version() == 1


def test_newer_schema_is_refused_clearly(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'joe.db'}"
    s = open_store(url)
    with s.engine.begin() as conn:
        conn.execute(
            schema_version.insert().values(version=7, description="from the future", applied_at=utcnow())
        )
    s.close()
    with pytest.raises(SchemaError, match=r"schema version 7, newer than .* \(1\)") as ei:
        open_store(url)
    assert str(tmp_path / "joe.db") in str(ei.value)


def test_gaps_in_migration_versions_are_a_programming_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mig, "MIGRATIONS", [*mig.MIGRATIONS, mig.Migration(3, "skips 2", lambda conn: None)])
    with pytest.raises(SchemaError, match="without gaps"):
        open_store("sqlite://")


def test_concurrent_first_open_migrates_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'joe.db'}"
    n = 4
    barrier = threading.Barrier(n)
    errors: list[BaseException] = []

    def opener() -> None:
        try:
            barrier.wait()
            open_store(url).close()
        except BaseException as e:  # collected and asserted below
            errors.append(e)

    threads = [threading.Thread(target=opener) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert [v for v, _ in _schema_dump(url)[1]] == [1]
