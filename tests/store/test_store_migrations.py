"""Versioned migrations: idempotence, new versions applied once, atomicity, refusal of newer schemas."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import Connection, select, text

from joe.core.clock import utcnow
from joe.store import SchemaError, StaleOrderError, migrate, open_store
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
        "pending_commissions",
    } <= names
    assert s.schema_version() == mig.latest_version()


def test_migrating_again_changes_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'joe.db'}"
    first = _schema_dump(url)
    s = open_store(url)
    assert migrate(s.engine) == []
    s.close()
    assert _schema_dump(url) == first
    assert [v for v, _ in first[1]] == list(range(1, mig.latest_version() + 1))


def test_a_new_migration_is_applied_exactly_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'joe.db'}"
    open_store(url).close()  # a database at the latest version
    nxt = mig.latest_version() + 1
    calls: list[int] = []

    def v_next(conn: Connection) -> None:
        calls.append(nxt)
        conn.execute(text("ALTER TABLE kv_state ADD COLUMN note TEXT"))

    monkeypatch.setattr(mig, "MIGRATIONS", [*mig.MIGRATIONS, mig.Migration(nxt, "kv note", v_next)])
    s = open_store(url)
    assert s.schema_version() == nxt and calls == [nxt]
    assert migrate(s.engine) == []
    s.close()
    with open_store(url) as again, again.engine.connect() as conn:
        cols = {r[1] for r in conn.execute(text("PRAGMA table_info(kv_state)"))}
    assert calls == [nxt]
    assert "note" in cols


def test_a_fresh_database_replays_all_versions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nxt = mig.latest_version() + 1
    monkeypatch.setattr(mig, "MIGRATIONS", [*mig.MIGRATIONS, mig.Migration(nxt, "noop", lambda conn: None)])
    s = open_store(data_dir=tmp_path)
    with s.engine.connect() as conn:
        assert [
            r[0] for r in conn.execute(select(schema_version.c.version).order_by(schema_version.c.version))
        ] == list(range(1, nxt + 1))


def test_a_failing_migration_leaves_the_previous_version_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'joe.db'}"
    open_store(url).close()
    latest = mig.latest_version()

    def broken(conn: Connection) -> None:
        conn.execute(text("CREATE TABLE half_done (id INTEGER)"))
        raise RuntimeError("boom in the middle of the next version")

    monkeypatch.setattr(mig, "MIGRATIONS", [*mig.MIGRATIONS, mig.Migration(latest + 1, "broken", broken)])
    with pytest.raises(RuntimeError, match="boom"):
        open_store(url)
    monkeypatch.undo()
    s = open_store(url)
    with s.engine.connect() as conn:
        tables = {r[0] for r in conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'table'"))}
    assert "half_done" not in tables  # the DDL was rolled back with the failed step
    assert s.schema_version() == latest


def test_newer_schema_is_refused_clearly(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'joe.db'}"
    s = open_store(url)
    with s.engine.begin() as conn:
        conn.execute(
            schema_version.insert().values(version=7, description="from the future", applied_at=utcnow())
        )
    s.close()
    with pytest.raises(
        SchemaError, match=rf"schema version 7, newer than .* \({mig.latest_version()}\)"
    ) as ei:
        open_store(url)
    assert str(tmp_path / "joe.db") in str(ei.value)


def test_gaps_in_migration_versions_are_a_programming_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        mig,
        "MIGRATIONS",
        [*mig.MIGRATIONS, mig.Migration(mig.latest_version() + 2, "skips one", lambda conn: None)],
    )
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
    assert [v for v, _ in _schema_dump(url)[1]] == list(range(1, mig.latest_version() + 1))


def test_every_migration_step_ends_at_the_current_schema(tmp_path: Path) -> None:
    """Replaying v1 → vN gives exactly the tables and columns `joe.store.schema` declares."""
    from sqlalchemy import inspect

    from joe.store import schema

    s = open_store(data_dir=tmp_path)
    insp = inspect(s.engine)
    for name, table in schema.metadata.tables.items():
        assert {c["name"] for c in insp.get_columns(name)} == set(table.c.keys()), name
    s.close()


def test_a_v1_database_with_orders_is_upgraded_keeping_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from store_builders import make_fill, make_order

    url = f"sqlite:///{tmp_path / 'joe.db'}"
    monkeypatch.setattr(mig, "MIGRATIONS", mig.MIGRATIONS[:1])
    v1 = open_store(url)
    with v1.engine.begin() as conn:
        o = make_order("joe-old")
        conn.execute(
            text(
                "INSERT INTO orders (client_order_id, signal_id, leg, symbol, side, order_type, "
                "time_in_force, reduce_only, quantity, state, broker, filled_quantity, mode, "
                "created_at, updated_at) VALUES "
                "('joe-old', 's', 'entry', 'AAPL', 'BUY', 'MARKET', 'GTC', 0, '10', 'ACCEPTED', 'sim', '0', "
                "'paper', '2024-03-01T14:30:00.000000+00:00', '2024-03-01T14:30:00.000000+00:00')"
            )
        )
    v1.close()
    monkeypatch.undo()
    s = open_store(url)
    assert s.schema_version() == mig.latest_version()
    old = s.load_order("joe-old")
    assert old is not None and old.version == 1 and old.attempt == 0 and old.parent_client_order_id is None
    assert o.client_order_id == "joe-old"
    # The upgraded row takes part in optimistic concurrency like any other.
    stale = s.load_order("joe-old")
    old.apply_fill(make_fill("f1", coid="joe-old", qty="2"))
    s.save_order(old, broker="sim", mode="paper")
    assert stale is not None
    with pytest.raises(StaleOrderError, match="version 1"):
        s.save_order(stale, broker="sim", mode="paper")
    back = s.load_order("joe-old")
    assert back is not None and back.version == 2 and back.filled_quantity == 2
    s.close()
