"""Which paper book a run may touch: one source, time moving forward only.

The paper book is a track record (it unlocks real money), so it must be one continuous history:
- it belongs to the source it was started on (its symbols are priced by that source only);
- its as-of date never goes back: an older as-of would mark today's positions at old prices and
  open positions dated before the ones already held.
Exploring the past or another data set is what a separate book (`JOE_DATA_DIR=...`, and
`joe backtest` where installed) is for; each refusal names its own cause and that fix.
The book's identity is kept in the store's key-value state.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from joe.store import Store

BOOK_KEY = "paper.book"


class BookRefused(RuntimeError):
    """The run would break the paper book's continuity (older as-of, other source); nothing was done."""


def source_identity(broker: str, source: str) -> str:
    """A stable name for where a book's prices come from: `sim:sample`, `sim:csv:/abs/dir`, `capital`."""
    if broker != "sim":
        return broker
    kind, _, arg = source.partition(":")
    if arg:
        arg = str(Path(arg).expanduser().resolve())
        return f"sim:{kind}:{arg}"
    return f"sim:{kind}"


@dataclass(frozen=True)
class BookIdentity:
    """The source a book belongs to and the last as-of date it was brought to."""

    source: str
    as_of: datetime | None

    @classmethod
    def load(cls, store: Store) -> BookIdentity | None:
        raw = store.get_state(BOOK_KEY)
        if not isinstance(raw, dict) or "source" not in raw:
            return None
        as_of = raw.get("as_of")
        return cls(str(raw["source"]), datetime.fromisoformat(as_of) if isinstance(as_of, str) else None)

    def save(self, store: Store) -> None:
        store.set_state(
            BOOK_KEY, {"source": self.source, "as_of": self.as_of.isoformat() if self.as_of else None}
        )


def source_label(identity: str) -> str:
    """How a user names a source: `sample`, `csv:/abs/dir`, `capital` (from `source_identity`)."""
    return identity.removeprefix("sim:")


def _run_flags(identity: str) -> str:
    """The `joe run` options that select `identity` (`--source csv:/dir`, `--broker capital`)."""
    if identity.startswith("sim:"):
        label = source_label(identity)
        return "" if label == "sample" else f" --source {shlex.quote(label)}"
    return f" --broker {identity}"


def _backtest_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("joe.cli.backtest_cmd") is not None


def check_source(book: BookIdentity | None, source: str, *, has_history: bool) -> None:
    """Raise `BookRefused` when a book started on another source would be run on `source`.

    A book without an identity but with history (made before identities were kept) is adopted.
    """
    if book is None or book.source == source:
        return
    kind = source_label(source).partition(":")[0]
    raise BookRefused(
        f"this paper book belongs to source {source_label(book.source)!r}, not {source_label(source)!r}: "
        "a book is tied to its source and its symbols (its positions are priced by that source only). "
        f"Continue this book with `joe run --once{_run_flags(book.source)}`; for the other source keep a "
        "separate book in its own data folder: "
        f"`JOE_DATA_DIR=data-{kind} joe run --once{_run_flags(source)}`."
    )


def check_forward(book: BookIdentity | None, as_of: date | datetime, *, asked: bool = True) -> None:
    """Raise `BookRefused` when `as_of` is earlier than the date the book was last brought to.

    `asked`: the date is the user's `--as-of`; else it is the newest bar of the run's data on or before
    the as-of (with or without a `--as-of`), and the message says so (a source without a bar the book
    already has: a weekend day a 24/7 market traded, a failover to a broker whose newest bar is older)."""
    if book is None or book.as_of is None:
        return
    last = book.as_of.date()
    day = as_of.date() if isinstance(as_of, datetime) else as_of
    if day >= last:
        return
    if not asked:
        raise BookRefused(
            f"the newest bar of this run's data (on or before its as-of) is of {day}, earlier than this "
            f"book's last date {last}: time only moves forward in one book, and the source has no bar for "
            "a day the book already has (a weekend or holiday a 24/7 market traded on, or another broker "
            f"after a failover). Nothing was traded. Run again once the source has a bar of {last} or "
            "later; to use this data now keep a separate book in its own data folder: "
            f"`JOE_DATA_DIR=data-{day} joe run --once{_run_flags(book.source)}`."
        )
    past = "`joe backtest`, or " if _backtest_available() else ""
    raise BookRefused(
        f"--as-of {day} is earlier than this paper book's last date {last}: time only moves forward "
        f"in one book (continue it with an --as-of on or after {last}, or without --as-of). "
        f"To explore {day} use {past}a separate book in its own data folder: "
        f"`JOE_DATA_DIR=data-{day} joe run --once{_run_flags(book.source)} --as-of {day}`."
    )
