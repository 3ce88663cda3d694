"""Market data sources: the embedded sample, a user's CSV/Parquet files, and (later) brokers.

`open_source(spec)` turns the CLI's `--source` string into a `joe.brokers.base.MarketData`:

* ``sample`` - real daily history shipped with Joe plus a labelled synthetic universe;
* ``csv:PATH`` / ``parquet:PATH`` - one file per symbol in the folder PATH (or PATH itself);
* anything registered in `SOURCES` (broker packages add ``capital``, ``ibkr``... via `register_source`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path

from joe.brokers.base import MarketData
from joe.data.collectors import (
    AfterHoursEngine,
    AfterHoursReport,
    Collected,
    CryptoDataCollector,
    HistoryCollector,
    Mover,
    StockDataCollector,
)
from joe.data.errors import DataError
from joe.data.file_source import PATTERNS, FileSource
from joe.data.frames import FrameSource, to_date
from joe.data.sample import SampleSource

# name -> factory(argument after "name:" or None, as_of, n_synthetic) -> MarketData
SourceFactory = Callable[[str | None, date | None, int], MarketData]


def _sample(arg: str | None, as_of: date | None, n_synthetic: int) -> MarketData:
    if arg:
        raise DataError(f"the sample source takes no argument (got 'sample:{arg}'); use --source sample")
    return SampleSource(n_synthetic=n_synthetic, as_of=as_of)


def _files(kind: str) -> SourceFactory:
    def make(
        arg: str | None, as_of: date | None, n_synthetic: int, date_format: str | None = None
    ) -> MarketData:
        if not arg:
            raise _needs_folder(kind)
        return FileSource(arg, PATTERNS[kind], as_of=as_of, kind=kind, date_format=date_format)

    return make


SOURCES: dict[str, SourceFactory] = {"sample": _sample, "csv": _files("csv"), "parquet": _files("parquet")}


def register_source(name: str, factory: SourceFactory) -> None:
    """Make `--source name[:ARG]` open `factory(ARG, as_of, n_synthetic)` (for broker-backed sources)."""
    SOURCES[name.lower()] = factory


def check_source_spec(spec: str) -> None:
    """Raise `DataError` (naming the spec and what to do) when `spec` names no known source, or a
    `csv:`/`parquet:` path that does not exist. Cheap: nothing is read. A run checks this before its book
    (a bad `--source` is a usage error, not a book that belongs elsewhere)."""
    text = (spec or "").strip()
    name, _, arg = text.partition(":")
    kind = name.strip().lower()
    if kind not in SOURCES:
        raise _unknown(spec)
    path = arg.strip()
    if kind in ("csv", "parquet") and not path:
        raise _needs_folder(kind)
    folder = Path(path).expanduser()
    if kind in ("csv", "parquet") and not folder.exists():  # FileSource's own words for it
        raise DataError(f"{kind} source: {folder} does not exist; give a folder with one file per symbol")


def open_source(
    spec: str,
    *,
    as_of: date | datetime | str | None = None,
    n_synthetic: int = 500,
    date_format: str | None = None,
) -> MarketData:
    """Open the source named by `spec` ('sample', 'csv:PATH', 'parquet:PATH', or a registered name).

    `date_format` (file sources only): 'dayfirst', 'monthfirst' or a strptime format for files whose
    dates cannot be read unambiguously (see `joe.data.dates`).
    """
    text = (spec or "").strip()
    name, _, arg = text.partition(":")
    factory = SOURCES.get(name.strip().lower())
    if factory is None:
        raise _unknown(spec)
    if date_format and name.strip().lower() in ("csv", "parquet"):
        return _files(name.strip().lower())(arg.strip() or None, to_date(as_of), n_synthetic, date_format)  # type: ignore[call-arg]
    return factory(arg.strip() or None, to_date(as_of), n_synthetic)


__all__ = [
    "SOURCES",
    "AfterHoursEngine",
    "AfterHoursReport",
    "Collected",
    "CryptoDataCollector",
    "DataError",
    "FileSource",
    "FrameSource",
    "HistoryCollector",
    "Mover",
    "SampleSource",
    "SourceFactory",
    "StockDataCollector",
    "open_source",
    "register_source",
]


def _unknown(spec: str) -> DataError:
    known = ", ".join(f"{k}:PATH" if k in ("csv", "parquet") else k for k in SOURCES)
    return DataError(f"unknown data source {spec!r}; choose one of: {known}")


def _needs_folder(kind: str) -> DataError:
    return DataError(f"the {kind} source needs a folder: --source {kind}:PATH (one file per symbol)")
