"""Opening the store: location, SQLite settings, portability and friendly errors."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.dialects import postgresql
from sqlalchemy.schema import CreateIndex, CreateTable

from joe.store import ENV_URL, SchemaError, Store, StoreError, open_store, resolve_url
from joe.store._base import insert_ignore
from joe.store.schema import fills, metadata


def test_default_location_creates_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_URL, raising=False)
    data = tmp_path / "nested" / "data"
    with open_store(data_dir=data) as s:
        s.set_state("x", 1)
    assert (data / "joe.db").is_file()


def test_env_url_overrides_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "elsewhere.db"
    monkeypatch.setenv(ENV_URL, f"sqlite:///{target}")
    assert resolve_url(None, tmp_path / "data") == f"sqlite:///{target}"
    assert resolve_url("sqlite://", tmp_path / "data") == "sqlite://"  # an explicit argument wins
    with open_store(data_dir=tmp_path / "data") as s:
        s.set_state("x", 1)
    assert target.is_file()
    assert not (tmp_path / "data" / "joe.db").exists()


def test_sqlite_pragmas_are_on(store: Store) -> None:
    with store.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert (conn.execute(text("PRAGMA busy_timeout")).scalar() or 0) > 0


def test_wal_is_persistent_in_the_file(store: Store, tmp_path: Path) -> None:
    store.set_state("x", 1)
    raw = sqlite3.connect(tmp_path / "data" / "joe.db")
    try:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        raw.close()


def test_in_memory_store_shares_one_database() -> None:
    s = open_store("sqlite://")
    s.set_state("k", [1, "a", None])
    assert s.get_state("k") == [1, "a", None]
    assert s.schema_version() == s.latest_schema_version


def test_directory_as_database_is_reported_with_its_path(tmp_path: Path) -> None:
    with pytest.raises(StoreError) as ei:
        open_store(f"sqlite:///{tmp_path}")
    assert str(tmp_path) in str(ei.value)


def test_uncreatable_directory_is_reported_with_its_path(tmp_path: Path) -> None:
    blocker = tmp_path / "afile"
    blocker.write_text("not a directory")
    with pytest.raises(StoreError) as ei:
        open_store(data_dir=blocker / "data")
    assert str(blocker / "data") in str(ei.value)


def test_non_database_file_is_refused(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not an sqlite database at all" * 100)
    with pytest.raises(StoreError) as ei:
        open_store(f"sqlite:///{junk}")
    assert str(junk) in str(ei.value)


def test_foreign_sqlite_database_is_refused(tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    raw = sqlite3.connect(other)
    raw.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY)")
    raw.commit()
    raw.close()
    with pytest.raises(SchemaError, match="not a Joe database") as ei:
        open_store(f"sqlite:///{other}")
    assert "customers" in str(ei.value) and str(other) in str(ei.value)


def test_password_never_appears_in_errors() -> None:
    with pytest.raises(StoreError) as ei:
        open_store("postgresql+psycopg://joe:s3cret-pw@127.0.0.1:1/joe")
    msg = str(ei.value)
    assert "s3cret-pw" not in msg and "***" in msg and "127.0.0.1" in msg
    chain = ei.value.__cause__ or ei.value.__context__
    assert chain is None or "s3cret-pw" not in str(chain)


def test_invalid_url_is_a_store_error() -> None:
    with pytest.raises(StoreError, match="invalid database URL"):
        open_store("definitely not a url")


def test_schema_compiles_for_postgresql() -> None:
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    ddl = []
    for table in metadata.sorted_tables:
        ddl.append(str(CreateTable(table).compile(dialect=dialect)))
        ddl.extend(str(CreateIndex(ix).compile(dialect=dialect)) for ix in table.indexes)
    joined = "\n".join(ddl)
    assert "CREATE UNIQUE INDEX uq_positions_open_signal" in joined and "WHERE status = 'open'" in joined
    assert "TIMESTAMP WITH TIME ZONE" in joined
    assert "PRAGMA" not in joined


def test_insert_ignore_compiles_to_on_conflict_for_postgresql() -> None:
    class _Conn:  # just enough of a Connection to capture the statement
        dialect = postgresql.dialect()  # type: ignore[no-untyped-call]

        def execute(self, stmt: object) -> object:
            self.sql = str(stmt.compile(dialect=self.dialect))  # type: ignore[attr-defined]

            class _R:
                rowcount = -1  # what psycopg 3 reports for this statement

                def first(self) -> tuple[str]:
                    return ("f",)

            return _R()

    conn = _Conn()
    assert insert_ignore(conn, fills, {"fill_id": "f"}, ["fill_id"])  # type: ignore[arg-type]
    assert "ON CONFLICT (fill_id) DO NOTHING RETURNING" in conn.sql
