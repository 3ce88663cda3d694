"""The `Store` facade: one object with every repository's methods.

Each write method commits before it returns (its own transaction), unless it runs inside
`store.atomic()`, which commits the whole block at once.
"""

from __future__ import annotations

from types import TracebackType

from sqlalchemy import select

from joe.store.migrations import latest_version
from joe.store.orders import OrderRepository
from joe.store.positions import PositionRepository
from joe.store.reconcile import ReconcileRepository
from joe.store.runs import RunRepository
from joe.store.schema import schema_version
from joe.store.state import StateRepository


class Store(OrderRepository, PositionRepository, RunRepository, StateRepository, ReconcileRepository):
    """Joe's persistence: orders, order events, fills, positions, signals, runs, paper account, state,
    reconciliation checkpoints and items.

    Create it with `joe.store.open_store()` (which migrates the schema). Methods return frozen
    dataclasses or core domain objects, never live database objects.

    The API is synchronous (SQLite commits take about a millisecond plus one fsync). It is thread-safe:
    each call checks a connection out of the engine's pool. An `atomic()` block belongs to the thread /
    asyncio task that opened it; do not hand work inside it to another thread (e.g. `asyncio.to_thread`).
    """

    def schema_version(self) -> int:
        """The schema version recorded in the database."""
        with self._read() as conn:
            v = conn.execute(
                select(schema_version.c.version).order_by(schema_version.c.version.desc())
            ).first()
        return int(v[0]) if v else 0

    @property
    def latest_schema_version(self) -> int:
        return latest_version()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({self.url})"
