"""One backtest end to end: options → data (once) → the day loop → the report folder.

`BacktestOptions` is what `joe backtest` takes; `run_backtest` returns where the report is and the
metrics. The scratch book lives in a temporary folder removed at the end: only the report stays.
The report root is checked before any data is read (`check_out_root`); each report gets a folder of
its own, created with `mkdir(exist_ok=False)` (`make_report_dir`): a report is never written into
another's folder. `metrics.json` holds what reproduces it: the options, the effective configuration
and the code version (`provenance`).
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from joe.backtest.engine import BacktestResult, ProgressFn, replay_sync
from joe.backtest.loading import load_history_sync
from joe.backtest.overrides import apply_overrides
from joe.backtest.precompute import History
from joe.config.schema import ExecutionConfig
from joe.core.clock import utcnow

if TYPE_CHECKING:
    from joe.backtest.report import BacktestPaths


@dataclass(frozen=True)
class BacktestOptions:
    """`joe backtest` options. `start`/`end` None: the data's first usable day / last day."""

    source: str = "sample"
    start: date | None = None
    end: date | None = None
    universe: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    date_format: str | None = None

    def describe(self) -> dict[str, Any]:
        d = asdict(self)
        d["start"] = self.start.isoformat() if self.start else None
        d["end"] = self.end.isoformat() if self.end else None
        return d


@dataclass
class BacktestOutcome:
    """Where the report is, its metrics, and the seconds each phase took."""

    id: str
    paths: BacktestPaths
    metrics: dict[str, Any]
    result: BacktestResult
    timings: dict[str, float]


class OutputDirError(ValueError):
    """The report root (`--out`) cannot hold a report: a file, not writable, or not creatable."""


def check_out_root(root: Path) -> None:
    """Refuse, before any work, a report root that cannot take a report folder: `root` or a folder on
    its way is a file, or the nearest existing folder does not let a folder be created in it (tried:
    an empty probe folder, removed at once). Nothing is left behind; `root` is not created here."""
    p = root.absolute()
    try:
        while not p.exists():
            if p.is_symlink():
                raise OutputDirError(f"--out {root}: {p} is a broken symbolic link")
            if p.parent == p:
                break
            p = p.parent
        if not p.is_dir():
            what = "is a file, not a folder" if p == root.absolute() else "is a file, not a folder on the way"
            raise OutputDirError(f"--out {root}: {p} {what}")
        probe = tempfile.mkdtemp(prefix=".joe-write-probe-", dir=p)
        os.rmdir(probe)
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        raise OutputDirError(f"--out {root}: cannot create a report folder in {p} ({why})") from None


def config_digest(config: ExecutionConfig) -> str:
    """SHA-256 of the effective configuration (canonical JSON)."""
    return hashlib.sha256(json.dumps(config_record(config), sort_keys=True).encode()).hexdigest()


def config_record(config: ExecutionConfig) -> dict[str, Any]:
    """The effective configuration as JSON-ready data, secret-looking fields masked."""
    from joe.audit.redaction import redact

    record: dict[str, Any] = redact(config.model_dump(mode="json"))
    for broker in record.get("brokers", {}).values():  # account identifiers: not the report's business
        for key in ("account", "account_id"):
            if isinstance(broker, dict) and broker.get(key):
                broker[key] = "***"
    return record


def _redacted(options: dict[str, Any]) -> dict[str, Any]:
    """The options as the report records them: a `--set` value that is a registered secret (an
    environment credential) or under a secret-looking key is masked, as in the recorded config."""
    from joe.audit.redaction import redact

    out: dict[str, Any] = redact(options)
    return out


def backtest_id(
    opts: BacktestOptions, now: datetime, config: ExecutionConfig | None = None, extra: bytes = b""
) -> str:
    """`bt-<UTC time>-<6 hex of the options, the effective config and `extra`>` (a sweep: its file):
    sortable, and two runs that differ in anything but time differ in it. Not unique on its own (two
    identical runs in one second): `make_report_dir` adds a suffix to an existing folder's name."""
    h = hashlib.sha256(json.dumps(opts.describe(), sort_keys=True, default=str).encode())
    if config is not None:
        h.update(config_digest(config).encode())
    h.update(extra)
    return f"bt-{now:%Y%m%d-%H%M%S}-{h.hexdigest()[:6]}"


def make_report_dir(root: Path, name: str) -> Path:
    """Create and return a new, empty folder `root/name` (or `name-2`, `name-3`, … when taken): made
    with `mkdir(exist_ok=False)`, so two runs — threads or processes — never share one."""
    root.mkdir(parents=True, exist_ok=True)
    for k in itertools.count(1):
        folder = root / (name if k == 1 else f"{name}-{k}")
        try:
            folder.mkdir(exist_ok=False)
        except FileExistsError:
            continue
        return folder
    raise AssertionError("unreachable")  # pragma: no cover


@cache
def code_version() -> dict[str, Any]:
    """Joe's package version and, when it runs from its own git checkout (the package is that tree's
    `src/joe`), the commit and whether tracked files have uncommitted changes (else None). No remote,
    path or user name: nothing secret."""
    from joe import __version__

    out: dict[str, Any] = {"joe": __version__, "git_commit": None, "git_dirty": None}
    package = Path(__file__).resolve().parent.parent

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", *args], cwd=package, capture_output=True, text=True, timeout=5, check=True
        )
        return done.stdout.strip()

    with contextlib.suppress(OSError, subprocess.SubprocessError):
        if Path(git("rev-parse", "--show-toplevel")).resolve() / "src" / "joe" == package:
            out["git_commit"] = git("rev-parse", "HEAD") or None
            out["git_dirty"] = bool(git("status", "--porcelain", "--untracked-files=no"))
    return out


def provenance(config: ExecutionConfig) -> dict[str, Any]:
    """What `metrics.json` records to reproduce a report besides its options: the effective config
    (after `--set`), its digest and the code version."""
    return {"config": config_record(config), "config_sha256": config_digest(config), "code": code_version()}


def prepare_report() -> None:
    """Import the report and its metrics library (empyrical, with SciPy: ~1 s): done by `replay` while
    the analysis worker computes its first day, when this process has nothing else to do."""
    from joe.backtest import metrics, report  # noqa: F401

    metrics.library()


def run_on_history(
    history: History,
    config: ExecutionConfig,
    opts: BacktestOptions,
    progress: ProgressFn | None = None,
    *,
    workers: int = 2,
) -> BacktestResult:
    """The day loop on already-loaded data, with `opts.overrides` applied to `config`.

    `workers`: 2 computes the days' market part in a second process ahead of the book (a pipeline
    over two cores, `joe.backtest.feed`), 1 keeps everything in this process; the results are the same.
    """
    cfg = apply_overrides(config, opts.overrides)
    with tempfile.TemporaryDirectory(prefix="joe-backtest-") as scratch:
        return replay_sync(
            history,
            cfg,
            Path(scratch),
            opts.start,
            opts.end,
            source=opts.source,
            progress=progress,
            workers=workers,
            while_waiting=prepare_report,
        )


def run_backtest(
    opts: BacktestOptions,
    config: ExecutionConfig,
    out_root: Path,
    *,
    progress: ProgressFn | None = None,
    now: datetime | None = None,
    workers: int = 2,
) -> BacktestOutcome:
    """Load the data, replay it, write `out_root/<id>/`. Raises `BacktestError`, `OverrideError`,
    `joe.data.errors.DataError` for options or data that do not fit (nothing is written then).
    `workers`: as `run_on_history`."""
    cfg = apply_overrides(config, opts.overrides)  # refused before any data is read
    check_out_root(out_root)  # so is a report root that cannot take the report
    t0 = time.perf_counter()
    history = load_history_sync(
        opts.source, cfg, start=opts.start, end=opts.end, universe=opts.universe,
        date_format=opts.date_format, processes=1 if workers < 2 else 2,  # --workers 1: the load too
    )  # fmt: skip
    t1 = time.perf_counter()
    result = run_on_history(history, cfg, opts, progress, workers=workers)
    t2 = time.perf_counter()
    folder = make_report_dir(out_root, backtest_id(opts, now or utcnow(), cfg))
    bt_id = folder.name
    first, last = result.days[0].day, result.days[-1].day
    title = f"Backtest {bt_id}: {opts.source}, {first} to {last}"
    timings = {"load": t1 - t0, "replay": t2 - t1}
    try:
        from joe.backtest.report import write_report  # imported already by the replay with a worker

        paths, metrics = write_report(
            result,
            folder,
            title,
            _redacted(opts.describe()) | {"timings": timings},
            provenance=provenance(cfg),
        )
    except BaseException:  # an error or Ctrl-C while writing: no half-written report stays
        shutil.rmtree(folder, ignore_errors=True)
        raise
    timings["report"] = time.perf_counter() - t2
    return BacktestOutcome(bt_id, paths, metrics, result, timings)
