"""Parameter sweeps and walk-forward on Dask: `joe backtest --sweep sweep.yaml [--walk-forward]`.

A sweep file (YAML) names config keys and their values:

    mode: grid            # grid (every combination) or random (`samples` draws, seeded); any case
    samples: 20           # random only
    seed: 1               # random only
    metric: sharpe        # the metric the heat maps show and walk-forward maximises; any case
    parameters:
      risk.max_positions: [5, 10, 15]          # a list: these values
      risk.risk_per_trade_pct: {low: 0.5, high: 2.0}   # random only: uniform in [low, high]
    walk_forward:         # --walk-forward only
      in_sample: 250      # trading days to choose the parameters on
      out_of_sample: 60   # trading days to test the chosen set on (the next window starts that much later)

Every point is one backtest (`joe.backtest.runner.run_on_history`) on the same loaded history. The
points run as tasks on a Dask `distributed` cluster: a `LocalCluster` by default, or an existing
scheduler (`--scheduler tcp://host:8786`); the history is scattered to the workers once. With no
client the same function runs serially (the test compares both).
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from joe.backtest.metrics import MIN_CAGR_DAYS
from joe.backtest.overrides import OverrideError, apply_overrides
from joe.backtest.precompute import History
from joe.backtest.report import result_metrics
from joe.backtest.runner import BacktestOptions, run_on_history
from joe.config.loader import DUPLICATE_HINT, DuplicateKeyError, UniqueKeyLoader, yaml_key_path
from joe.config.schema import ExecutionConfig


class SweepError(ValueError):
    """The sweep file is unreadable or names something the config or the data does not have."""


# A sweep (or walk-forward) runs every point on one loaded history, so a key that acts while the data is
# loaded (`joe.backtest.loading` / `precompute`) would be silently ignored: each is refused, with why.
# tests/backtest/test_sweep_checks.py checks that every config key those modules read is listed here.
LOAD_TIME_KEYS: dict[str, str] = {
    "pipeline.universe_size": (
        "it caps the universe while the data is loaded (and sizes the sample source), and a sweep loads "
        "the data once for every point; run one backtest per value with --set pipeline.universe_size=N, "
        "or give it once with --set for the whole sweep"
    ),
    "pipeline.history_bars": (
        "it is how many bars a run loads; a backtest has loaded every bar, so it would change nothing"
    ),
}

# The file's top-level keys, and those of `walk_forward:`.
TOP_KEYS = ("mode", "samples", "seed", "metric", "parameters", "walk_forward")
WALK_KEYS = ("in_sample", "out_of_sample")

# The metrics a sweep can rank by (keys of `joe.backtest.metrics.compute_metrics`) and which way is
# better. Dates, the constant starting equity, the day count and the activity measures (trades,
# exposure, turnover: neither more nor less is better) are reported in sweep.csv but rank nothing.
METRICS: dict[str, str] = {
    "total_return": "max",
    "cagr": "max",
    "sharpe": "max",
    "sortino": "max",
    "max_drawdown": "max",  # a negative fraction: nearer 0 is better
    "final_equity": "max",
    "net_pnl": "max",
    "win_rate": "max",
    "profit_factor": "max",
    "avg_r_multiple": "max",
    "avg_win": "max",
    "avg_loss": "max",  # negative: nearer 0 is better
    "volatility": "min",
    "max_drawdown_days": "min",
    "max_drawdown_calendar_days": "min",
    "fees": "min",
}

# The fewest trading days a window needs for the metric to have a value (`compute_metrics`: a CAGR under a
# month is None; volatility, Sharpe and Sortino need two daily returns). A walk-forward whose in-sample
# window is shorter is refused: no set would have the metric, and the first would be "chosen".
MIN_WINDOW_DAYS: dict[str, int] = {"cagr": MIN_CAGR_DAYS, "volatility": 2, "sharpe": 2, "sortino": 2}

# More backtests than this are refused before any runs: a sweep's parameter sets are counted before any is
# built; a walk-forward's sets × windows (+ one out-of-sample run per window) once the data gives the windows.
MAX_POINTS = 10_000


@dataclass(frozen=True)
class WalkForward:
    in_sample: int
    out_of_sample: int


@dataclass(frozen=True)
class SweepSpec:
    """A parsed sweep file."""

    points: list[dict[str, Any]]
    keys: list[str]
    metric: str  # canonical (lower case): a key of METRICS
    walk_forward: WalkForward | None
    mode: str = "grid"  # grid or random

    @property
    def higher_is_better(self) -> bool:
        return METRICS[self.metric] == "max"


def _int(raw: Any, what: str, path: Path, low: int = 1) -> int:
    if not isinstance(raw, int) or isinstance(raw, bool) or raw < low:
        raise SweepError(f"{path}: {what} must be a whole number ≥ {low}, not {raw!r}")
    return raw


def _number(raw: Any) -> bool:
    return isinstance(raw, int | float) and not isinstance(raw, bool) and math.isfinite(raw)


def load_time_reason(key: str) -> str | None:
    """Why `key` cannot be swept (it acts while the data is loaded), or None when it can."""
    for fixed, why in LOAD_TIME_KEYS.items():
        if key == fixed:
            return why
        if fixed.startswith(key + "."):  # a whole section (`pipeline: [{...}]`) would set it too
            return f"it holds {fixed}, which cannot be swept: {why}"
    return None


def _check_values(path: Path, key: str, values: Any, mode: str) -> None:
    """A parameter's values: a non-empty list, or (random) {low, high} numbers with low ≤ high."""
    if isinstance(values, list):
        if not values:
            raise SweepError(f"{path}: parameters: {key} has an empty list; give at least one value")
        for v in values:  # one value per point: a row of sweep.csv, a label of the heat maps
            if isinstance(v, dict | list):
                kind = "mapping" if isinstance(v, dict) else "list"
                raise SweepError(
                    f"{path}: parameters: {key}: each value must be a single value (a number, text, true or "
                    f"false), not a {kind} ({v!r}); sweep a section's keys one by one ({key}.KEY: [...])"
                )
        return
    if isinstance(values, dict) and mode == "random":
        if set(values) != {"low", "high"}:
            raise SweepError(
                f"{path}: parameters: {key} must be a list or {{low: N, high: N}}, not a mapping with "
                f"{', '.join(sorted(map(str, values)))}"
            )
        low, high = values["low"], values["high"]
        for name, v in (("low", low), ("high", high)):
            if not _number(v):
                raise SweepError(f"{path}: parameters: {key}: {name} must be a number, not {v!r}")
        if low > high:
            raise SweepError(f"{path}: parameters: {key}: low ({low}) is above high ({high}); swap them")
        return
    hint = " or {low: N, high: N}" if mode == "random" else " ({low, high} ranges need mode: random)"
    raise SweepError(f"{path}: parameters: {key} must be a non-empty list{hint}, not {values!r}")


def _check_point(path: Path, config: ExecutionConfig, point: Mapping[str, Any]) -> None:
    try:
        apply_overrides(config, point)
    except OverrideError as exc:
        if exc.key is not None:  # the key itself names nothing in the config
            raise SweepError(
                f"{path}: the sweep file's parameter {exc.key!r} is not a config key: {exc.detail}"
            ) from None
        shown = ", ".join(f"{k}={v!r}" for k, v in point.items())
        raise SweepError(f"{path}: parameters: the config refuses {shown}: {exc.detail}") from None


def load_spec(path: Path, config: ExecutionConfig) -> SweepSpec:
    """Read and check a sweep file; every point is validated against the config schema.

    Raises `SweepError` naming the file and the key at fault — before any point is built when the
    file asks for more than `MAX_POINTS` backtests.
    """
    try:
        text = path.read_text(encoding="utf-8")
        raw = yaml.load(text, Loader=UniqueKeyLoader)
    except OSError as exc:
        raise SweepError(f"cannot read sweep file {path}: {exc.strerror or exc}") from None
    except DuplicateKeyError as exc:  # read last-wins, a repeated value or section would be half ignored
        where = yaml_key_path(text, exc.problem_mark.index) if exc.problem_mark is not None else ""
        name = f"{where}.{exc.key}" if where else str(exc.key)
        raise SweepError(
            f"{path}: line {exc.line}: the key {name!r} is given twice "
            f"(first on line {exc.first_line}{exc.merged}); {DUPLICATE_HINT}"
        ) from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise SweepError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("parameters"), dict) or not raw["parameters"]:
        raise SweepError(f"{path}: needs a `parameters:` mapping of config keys to values")
    unknown = [str(k) for k in raw if k not in TOP_KEYS]
    if unknown:
        raise SweepError(
            f"{path}: unknown key(s) {', '.join(map(repr, unknown))}; a sweep file has {', '.join(TOP_KEYS)}"
        )
    params: dict[Any, Any] = raw["parameters"]
    mode = canonical(raw.get("mode", "grid"))
    if mode not in ("grid", "random"):
        raise SweepError(f"{path}: mode must be grid or random, not {raw.get('mode')!r}")
    if mode == "grid":
        extra = [k for k in ("samples", "seed") if k in raw]
        if extra:
            raise SweepError(
                f"{path}: {' and '.join(extra)} apply to mode: random only (this file is a grid)"
            )
    for key, values in params.items():
        if not isinstance(key, str) or not key.strip():
            raise SweepError(f"{path}: parameters: {key!r} is not a config key (e.g. risk.max_positions)")
        why = load_time_reason(key)
        if why is not None:
            raise SweepError(f"{path}: parameters: {key} cannot be swept: {why}")
        _check_values(path, key, values, mode)
    wf = raw.get("walk_forward")
    walk = None
    if wf is not None:
        if not isinstance(wf, dict):
            raise SweepError(f"{path}: walk_forward must be a mapping with in_sample and out_of_sample")
        extra = [str(k) for k in wf if k not in WALK_KEYS]
        if extra:
            raise SweepError(
                f"{path}: walk_forward: unknown key(s) {', '.join(map(repr, extra))}; it has "
                f"{' and '.join(WALK_KEYS)}"
            )
        walk = WalkForward(
            _int(wf.get("in_sample"), "walk_forward.in_sample", path),
            _int(wf.get("out_of_sample"), "walk_forward.out_of_sample", path),
        )
    metric = canonical(raw.get("metric", "sharpe"))
    if metric not in METRICS:  # a typo would rank every set -inf: walk-forward would pick the first one
        raise SweepError(
            f"{path}: metric {raw.get('metric')!r} is not a backtest metric a sweep can rank by; choose "
            f"one of {', '.join(metric_names())} (any case)"
        )
    need = MIN_WINDOW_DAYS.get(metric, 1)
    if walk is not None and walk.in_sample < need:  # no set would have the metric: the first "wins"
        raise SweepError(
            f"{path}: metric {metric} needs walk_forward.in_sample of at least {need} trading days "
            f"(a shorter window has no {metric}), not {walk.in_sample}; lengthen it or rank by another metric"
        )
    keys = list(params)
    if mode == "grid":
        count = math.prod(len(v) for v in params.values())
        what = " × ".join(f"{len(v)} {k}" for k, v in params.items())
        narrow = "use fewer values, or mode: random with samples: N"
    else:
        count = _int(raw.get("samples", 10), "samples", path)
        what = f"samples: {count}"
        narrow = "lower samples"
        seed = raw.get("seed", 1)
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise SweepError(f"{path}: seed must be a whole number, not {seed!r}")
    if count > MAX_POINTS:
        raise SweepError(
            f"{path}: {count:,} parameter sets ({what}) is more than the {MAX_POINTS:,} a sweep runs "
            f"(each is a whole backtest); {narrow}"
        )
    # Each value alone first (names the key and value), then every point (the schema's cross-field checks).
    for key, values in params.items():
        for v in values if isinstance(values, list) else (values["low"], values["high"]):
            _check_point(path, config, {key: v})
    if mode == "grid":
        points = [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*params.values())]
    else:
        rng = random.Random(seed)
        points = [{k: _draw(rng, v) for k, v in params.items()} for _ in range(count)]
    for p in points:
        _check_point(path, config, p)
    return SweepSpec(points, keys, metric, walk, mode)


def canonical(value: Any) -> str:
    """An enumerated value of a sweep file (`mode`, `metric`) as its canonical name: any case, spaces
    around it ignored (`GRID`, ` Sharpe` → `grid`, `sharpe`); the same rule as the command's options
    (`--source CSV:…`, `--date-format DayFirst`, `--scheduler TCP://…`). What is run and reported is
    the canonical name."""
    return str(value).strip().lower()


def metric_names() -> list[str]:
    """The metrics a sweep ranks by (`METRICS`, all keys of `compute_metrics`), sorted."""
    return sorted(METRICS)


def _draw(rng: random.Random, values: Any) -> Any:
    if isinstance(values, list):
        return rng.choice(values)
    low, high = values["low"], values["high"]
    if isinstance(low, int) and isinstance(high, int):
        return rng.randint(low, high)
    return round(rng.uniform(float(low), float(high)), 6)


# --------------------------------------------------------------------------------------------- running
def run_point(
    history: History, config: ExecutionConfig, base: BacktestOptions, point: Mapping[str, Any]
) -> dict[str, Any]:
    """One sweep point: the backtest with `point` as overrides → its metrics (JSON-ready)."""
    opts = replace(base, overrides={**base.overrides, **point})
    # One process per point: the points are the parallelism (a Dask worker may not have children).
    result = run_on_history(history, config, opts, workers=1)
    metrics = result_metrics(result)
    return {**{f"param:{k}": v for k, v in point.items()}, **metrics}


Mapper = Callable[[Sequence[tuple[BacktestOptions, dict[str, Any]]]], list[dict[str, Any]]]


class SweepInterrupted(Exception):
    """Ctrl-C during a sweep: `done` of `total` backtests had finished (their results are dropped)."""

    def __init__(self, done: int, total: int) -> None:
        super().__init__(f"interrupted after {done} of {total} backtests")
        self.done, self.total = done, total


def dask_setup(worker: Any) -> None:
    """Dask's preload hook (`LocalCluster(preload=["joe.backtest.sweep"])`): a sweep's worker process
    ignores SIGINT. Ctrl-C in a terminal reaches every process of its group; the command stops the
    sweep and says so in one line, where each worker would print a traceback of its own."""
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def serial_mapper(history: History, config: ExecutionConfig) -> Mapper:
    """Run the points one after the other in this process."""
    return lambda jobs: [run_point(history, config, o, p) for o, p in jobs]


class DaskMapper:
    """Run the points as Dask tasks; the history is scattered to every worker once. `done`/`total`
    count the backtests over every call (a walk-forward calls it twice); Ctrl-C cancels the tasks left
    and raises `SweepInterrupted`."""

    def __init__(self, client: Any, history: History, config: ExecutionConfig, total: int = 0) -> None:
        self.client = client
        self.h = client.scatter(history, broadcast=True)
        self.c = client.scatter(config, broadcast=True)
        self.done = 0
        self.total = total

    def __call__(self, jobs: Sequence[tuple[BacktestOptions, dict[str, Any]]]) -> list[dict[str, Any]]:
        from distributed import as_completed

        futures = [self.client.submit(run_point, self.h, self.c, o, p, pure=False) for o, p in jobs]
        self.total = max(self.total, self.done + len(futures))
        try:
            for _ in as_completed(futures):
                self.done += 1
            return list(self.client.gather(futures))
        except KeyboardInterrupt:
            done = self.done
            try:
                self.client.cancel(futures)
            except Exception:  # the interrupt is what gets reported
                pass
            raise SweepInterrupted(done, self.total) from None


def dask_mapper(client: Any, history: History, config: ExecutionConfig, total: int = 0) -> DaskMapper:
    """Run the points as Dask tasks (`DaskMapper`)."""
    return DaskMapper(client, history, config, total)


def sweep(spec: SweepSpec, base: BacktestOptions, mapper: Mapper) -> pd.DataFrame:
    """Every point over the base window: one row per point (`param:<key>` columns, then metrics)."""
    return pd.DataFrame(mapper([(base, p) for p in spec.points]))


def windows(history: History, base: BacktestOptions, wf: WalkForward) -> list[tuple[date, date, date, date]]:
    """Rolling (in-sample start, end, out-of-sample start, end) over the base window's trading days from
    the first day the regime can be labelled (as a backtest starts: `replay`), so each in-sample window
    has its `in_sample` days (the data's first ~200 days made the first window empty: a refused run)."""
    ready = history.first_regime_row()
    days = [history.panel.dates[t].date() for t in history.days(base.start, base.end).tolist() if t >= ready]
    out = []
    i = 0
    while i + wf.in_sample < len(days):
        oos = days[i + wf.in_sample : i + wf.in_sample + wf.out_of_sample]
        out.append((days[i], days[i + wf.in_sample - 1], oos[0], oos[-1]))
        i += wf.out_of_sample
    if not out:
        raise SweepError(
            f"walk-forward needs more than in_sample={wf.in_sample} trading days; the window has {len(days)}"
        )
    return out


def _score(row: Mapping[str, Any], metric: str) -> float:
    """Higher is better whichever way the metric points (`METRICS`); no value: -inf."""
    v = row.get(metric)
    if not isinstance(v, int | float) or not math.isfinite(v):
        return -math.inf
    return float(v) if METRICS.get(metric, "max") == "max" else -float(v)


def best_row(table: pd.DataFrame, metric: str) -> pd.Series | None:
    """The row with the best `metric` (`METRICS`' direction; ties: the first), None when no row has one."""
    values = pd.to_numeric(table[metric], errors="coerce") if metric in table else pd.Series(dtype=float)
    if not len(values) or values.isna().all():
        return None
    i = values.idxmax() if METRICS.get(metric, "max") == "max" else values.idxmin()
    return table.loc[i]


def walk_forward_backtests(spec: SweepSpec, n_windows: int, path: Path | str = "the sweep file") -> int:
    """The backtests a walk-forward runs: every parameter set in each of `n_windows` in-sample windows,
    then the best set on each out-of-sample window. Raises `SweepError` with both counts (sets and
    backtests) when that is more than `MAX_POINTS` (the cap counts the real work, not the sets)."""
    sets = len(spec.points)
    total = n_windows * (sets + 1)
    if total > MAX_POINTS:
        raise SweepError(
            f"{path}: walk-forward: {sets:,} parameter set(s) × {n_windows:,} window(s) is {total:,} "
            f"backtests ({sets * n_windows:,} in sample + {n_windows:,} out of sample), more than the "
            f"{MAX_POINTS:,} a sweep runs; use fewer values (or samples), a longer "
            f"walk_forward.out_of_sample (fewer windows) or a shorter --from/--to"
        )
    return total


def walk_forward(
    spec: SweepSpec, history: History, base: BacktestOptions, mapper: Mapper
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(every in-sample result, one row per window: the best set and its out-of-sample result).

    The best set of a window is the one with the best `spec.metric` in sample (the highest, or the
    lowest for a metric where less is better: `METRICS`; ties: the first in the file's order); it is
    then run, unchanged, on the following out-of-sample days.
    """
    assert spec.walk_forward is not None
    wins = windows(history, base, spec.walk_forward)
    walk_forward_backtests(spec, len(wins))
    jobs = [(replace(base, start=a, end=b), p) for a, b, _, _ in wins for p in spec.points]
    ins = mapper(jobs)
    n = len(spec.points)
    best: list[dict[str, Any]] = []
    for w in range(len(wins)):
        rows = ins[w * n : (w + 1) * n]
        k = max(range(n), key=lambda i: (_score(rows[i], spec.metric), -i))
        best.append(spec.points[k])
    oos = mapper([(replace(base, start=c, end=d), best[w]) for w, (_, _, c, d) in enumerate(wins)])
    table = []
    for w, (a, b, c, d) in enumerate(wins):
        row: dict[str, Any] = {"window": w + 1, "in_sample": f"{a} to {b}", "out_of_sample": f"{c} to {d}"}
        row |= {f"param:{k}": v for k, v in best[w].items()}
        row[f"in_sample_{spec.metric}"] = ins[w * n + spec.points.index(best[w])].get(spec.metric)
        row |= {f"oos_{m}": oos[w].get(m) for m in ("total_return", "sharpe", "max_drawdown", "trades")}
        table.append(row)
    all_in = pd.DataFrame(ins)
    all_in.insert(0, "window", [w + 1 for w in range(len(wins)) for _ in range(n)])
    return all_in, pd.DataFrame(table)
