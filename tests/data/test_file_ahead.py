"""A folder read in two processes (`joe.data.file_ahead`, a backtest's load) is the folder read in one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from joe.data import FileSource
from joe.data.dates import DateFormats
from joe.data.file_ahead import MIN_FILES, ReadAhead, read_processes
from joe.data.files import LoadedFile, _read_checked

N = MIN_FILES + 8


def _bars(seed: int, n: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 50 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = close * np.exp(rng.normal(0, 0.003, n))
    return pd.DataFrame(
        {
            "date": pd.date_range("2024-01-02", periods=n, freq="B"),
            "open": open_,
            "high": np.maximum(open_, close) * 1.01,
            "low": np.minimum(open_, close) * 0.99,
            "close": close,
            "volume": rng.integers(1000, 5000, n).astype(float),
        }
    )


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """N parquet files; in the second half (the helper's): a file with a weekend bar (a `non_session`
    warning and a row left out), an unreadable one, one with a text cell (an error naming the row)."""
    for i in range(N):
        _bars(i).to_parquet(tmp_path / f"S{i:03d}.parquet", index=False)
    weekend = _bars(100)
    weekend.loc[10, "date"] = pd.Timestamp("2024-01-20")  # a Saturday, between the Friday and Monday
    weekend = weekend.sort_values("date")
    weekend.to_parquet(tmp_path / f"S{N - 5:03d}.parquet", index=False)
    (tmp_path / f"S{N - 3:03d}.parquet").write_bytes(b"not parquet at all")
    text = _bars(101)
    text["close"] = [repr(float(c)) for c in text["close"]]
    text.loc[7, "close"] = "n/a"
    text.to_parquet(tmp_path / f"S{N - 1:03d}.parquet", index=False)
    return tmp_path


def _same_source(a: FileSource, b: FileSource) -> None:
    assert a.findings == b.findings
    assert list(a._frames) == list(b._frames)
    for sym, frame in a._frames.items():
        pd.testing.assert_frame_equal(frame, b._frames[sym], check_freq=True)
        x, y = a._files[sym], b._files[sym]
        assert (x.symbol, x.file, x.daily, x.findings) == (y.symbol, y.file, y.daily, y.findings)
        assert np.array_equal(x.rows, y.rows)
    assert a._instruments == b._instruments
    assert (a.native_timeframe, a.last_date) == (b.native_timeframe, b.last_date)


def test_two_processes_read_the_same_source(folder: Path) -> None:
    one = FileSource(folder, "*.parquet")
    with read_processes(2):
        two = FileSource(folder, "*.parquet")
    _same_source(one, two)
    # The fixture's findings are there (read by this process: the helper skips what fails).
    checks = {f.check for f in two.findings}
    assert {"unreadable", "non_session"} <= checks


def test_the_helper_reads_the_second_half(folder: Path) -> None:
    paths = sorted(folder.iterdir())
    formats = DateFormats.parse(None)
    with read_processes(2), ReadAhead(paths, lambda p: _read_checked(p, formats)) as ahead:
        assert ahead.take(paths[-2]) is None  # not started: everything is read here
        ahead.start()
        first = [ahead.take(p) for p in paths[: N // 2]]
        second = {p.name: ahead.take(p) for p in paths[N // 2 :]}
    assert first == [None] * (N // 2)  # this process's half
    # The helper's half: each file as `FileSource` reads it, the unreadable ones not sent.
    failed = {f"S{N - 3:03d}.parquet", f"S{N - 1:03d}.parquet"}
    assert {name for name, got in second.items() if got is None} == failed
    for p in paths[N // 2 :]:
        got = second[p.name]
        if got is None:
            continue
        assert isinstance(got, LoadedFile)
        want = _read_checked(p, formats)
        pd.testing.assert_frame_equal(got.frame, want.frame)
        assert got.findings == want.findings and np.array_equal(got.rows, want.rows)
    assert any(got is not None and got.findings for got in second.values())  # the weekend file's warning


def test_one_process_by_default_and_for_small_folders(folder: Path) -> None:
    paths = sorted(folder.iterdir())
    with ReadAhead(paths, LoadedFile) as ahead:  # `read` is never called: no helper
        ahead.start()
        assert all(ahead.take(p) is None for p in paths)
    with read_processes(2), ReadAhead(paths[: MIN_FILES - 1], LoadedFile) as ahead:
        ahead.start()
        assert all(ahead.take(p) is None for p in paths)


def test_a_helper_that_dies_leaves_the_reading_here(folder: Path) -> None:
    paths = sorted(folder.iterdir())

    def die(p: Path) -> LoadedFile:
        import os

        os._exit(3)

    with read_processes(2), ReadAhead(paths, die) as ahead:
        ahead.start()
        assert all(ahead.take(p) is None for p in paths)


@pytest.mark.parametrize("processes", [1, 2])
def test_a_backtest_load_forks_a_reader_only_when_asked_for_two_processes(
    folder: Path, processes: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`joe backtest --workers 1` promises one process: its load (`load_history(processes=1)`) reads
    every file here; the default (2) starts the read-ahead helper (before: the load forked whatever
    --workers said)."""
    from joe.backtest.loading import load_history_sync
    from joe.config.schema import ExecutionConfig

    started: list[int] = []
    real_start = ReadAhead.start

    def start(self: ReadAhead) -> None:
        real_start(self)
        started.append(len(self.theirs))

    monkeypatch.setattr(ReadAhead, "start", start)
    load_history_sync(f"parquet:{folder}", ExecutionConfig(), processes=processes)
    assert started and (max(started) > 0) is (processes == 2), started


def test_a_helper_whose_reader_is_gone_exits_instead_of_blocking(tmp_path: Path) -> None:
    """Before: the helper kept its own copy of the pipe's reading end, so with the book's process gone
    (SIGKILL, the OOM killer) its send of more than a pipe's buffer blocked forever, an orphan holding
    its memory (hostile review 2026-12-03). Here the reader closes its end unread, as a dead process
    would: the helper's send fails and it exits."""
    paths = [tmp_path / f"S{i:03d}.csv" for i in range(MIN_FILES)]
    with read_processes(2):
        ahead = ReadAhead(paths, lambda p: "x" * 100_000)  # type: ignore[arg-type, return-value]
    ahead.start()
    proc, conn = ahead._proc, ahead._conn
    assert proc is not None and conn is not None
    conn.close()
    ahead._conn = ahead._proc = None
    proc.join(60)  # a liveness bound, not a speed check: the helper needs well under a second
    alive = proc.is_alive()
    if alive:
        proc.kill()
        proc.join(5)
    assert not alive and proc.exitcode == 0
