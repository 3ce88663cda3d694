"""A backtest's own scratch book: a temporary data folder, store and audit log, always paper.

A backtest must never touch the user's paper book (`data/joe.db`, `data/audit/`): it replays the past,
which the real book refuses (time only moves forward in one book). So it runs the same
`PaperPortfolio` against a throwaway store in a folder of its own. The store is a `MemoryStore`
(`joe.backtest.memstore`: the store calls of the day loop as dict/list operations, nothing to clean up
or lock); the audit sink is a `MemoryAudit` (`joe.backtest.memaudit`: the records in a list — a
scratch audit log is deleted with the scratch folder, unread, and writing it cost a fifth of the loop).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, cast

from joe.audit.log import AuditLog
from joe.backtest.memaudit import MemoryAudit
from joe.backtest.memstore import MemoryStore
from joe.config.mode import ModeDecision, TradingMode
from joe.config.schema import ExecutionConfig
from joe.config.settings import Settings
from joe.runtime.bootstrap import Runtime

if TYPE_CHECKING:  # the SQLAlchemy store: only its interface (the book is a MemoryStore)
    from joe.store import Store

SCRATCH_DB_URL = "sqlite://"  # what the scratch Settings name; the book itself is a MemoryStore


def scratch_runtime(config: ExecutionConfig, folder: Path) -> Runtime:
    """A paper `Runtime` whose store and audit log live in `folder` (created), never the user's.

    The mode is paper whatever `TRADING_MODE` says: a backtest sends no order anywhere.
    """
    folder.mkdir(parents=True, exist_ok=True)
    settings = Settings(data_dir=folder, db_url=SCRATCH_DB_URL)  # type: ignore[call-arg]
    audit = cast(AuditLog, MemoryAudit())  # every layer writes through `record` (the AuditSink protocol)
    store = cast("Store", MemoryStore())  # the Store calls of the day loop, in memory
    decision = ModeDecision(
        requested="paper", mode=TradingMode.PAPER, reasons=["backtest: a scratch paper book"]
    )
    return Runtime(settings, config, [], audit, store, decision, folder)
