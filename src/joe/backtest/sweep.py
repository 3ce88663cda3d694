"""Parameter sweeps and walk-forward on Dask: `joe backtest --sweep sweep.yaml [--walk-forward]`.

A sweep file (YAML) names config keys and their values:

    mode: grid            # grid (every combination) or random (`samples` draws, seeded)
    samples: 20           # random only
    seed: 1               # random only
    metric: sharpe        # the metric the heat maps show and walk-forward maximises
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

from joe.backtest.metrics import compute_metrics
from joe.backtest.overrides import OverrideError, apply_overrides
from joe.backtest.precompute import History
from joe.backtest.report import result_metrics
from joe.backtest.runner import BacktestOptions, run_on_history
from joe.config.schema import ExecutionConfig


class SweepError(ValueError):
    """The sweep file is unreadable or names something the config or the data does not have."""


@dataclass(frozen=True)
class WalkForward:
    in_sample: int
    out_of_sample: int


@dataclass(frozen=True)
class SweepSpec:
    """A parsed sweep file."""

    points: list[dict[str, Any]]
    keys: list[str]
    metric: str
    walk_forward: WalkForward | None


def _int(raw: Any, what: str, path: Path) -> int:
    if not isinstance(raw, int) or isinstance(raw, bool) or raw < 1:
        raise SweepError(f"{path}: {what} must be a whole number ≥ 1, not {raw!r}")
    return raw


def load_spec(path: Path, config: ExecutionConfig) -> SweepSpec:
    """Read and check a sweep file; every point is validated against the config schema.

    Raises `SweepError` naming the file and the key at fault.
    """
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SweepError(f"cannot read sweep file {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise SweepError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("parameters"), dict) or not raw["parameters"]:
        raise SweepError(f"{path}: needs a `parameters:` mapping of config keys to values")
    params: dict[str, Any] = raw["parameters"]
    mode = str(raw.get("mode", "grid")).lower()
    if mode not in ("grid", "random"):
        raise SweepError(f"{path}: mode must be grid or random, not {mode!r}")
    for key, values in params.items():
        ranged = isinstance(values, dict) and {"low", "high"} <= set(values)
        if not (isinstance(values, list) and values) and not (ranged and mode == "random"):
            raise SweepError(
                f"{path}: parameters.{key} must be a non-empty list"
                + (" or {low, high}" if mode == "random" else "")
            )
    keys = list(params)
    if mode == "grid":
        points = [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*params.values())]
    else:
        rng = random.Random(raw.get("seed", 1))
        points = [
            {k: _draw(rng, v) for k, v in params.items()}
            for _ in range(_int(raw.get("samples", 10), "samples", path))
        ]
    for p in points:
        try:
            apply_overrides(config, p)
        except OverrideError as exc:
            raise SweepError(f"{path}: {exc}") from None
    wf = raw.get("walk_forward")
    walk = None
    if wf is not None:
        if not isinstance(wf, dict):
            raise SweepError(f"{path}: walk_forward must be a mapping with in_sample and out_of_sample")
        walk = WalkForward(
            _int(wf.get("in_sample"), "walk_forward.in_sample", path),
            _int(wf.get("out_of_sample"), "walk_forward.out_of_sample", path),
        )
    metric = str(raw.get("metric", "sharpe"))
    known = metric_names()
    if metric not in known:  # a typo would rank every set -inf: walk-forward would pick the first one
        raise SweepError(
            f"{path}: metric {metric!r} is not a backtest metric; choose one of {', '.join(known)}"
        )
    return SweepSpec(points, keys, metric, walk)


def metric_names() -> list[str]:
    """The metrics a backtest reports (`joe.backtest.metrics.compute_metrics`' keys), sorted."""
    empty = pd.Series([], dtype=float, index=pd.DatetimeIndex([]))
    return sorted(compute_metrics(empty, [], {}))


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


def serial_mapper(history: History, config: ExecutionConfig) -> Mapper:
    """Run the points one after the other in this process."""
    return lambda jobs: [run_point(history, config, o, p) for o, p in jobs]


def dask_mapper(client: Any, history: History, config: ExecutionConfig) -> Mapper:
    """Run the points as Dask tasks; the history is scattered to every worker once."""
    h = client.scatter(history, broadcast=True)
    c = client.scatter(config, broadcast=True)

    def run(jobs: Sequence[tuple[BacktestOptions, dict[str, Any]]]) -> list[dict[str, Any]]:
        futures = [client.submit(run_point, h, c, o, p, pure=False) for o, p in jobs]
        return list(client.gather(futures))

    return run


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
    v = row.get(metric)
    return float(v) if isinstance(v, int | float) and math.isfinite(v) else -math.inf


def walk_forward(
    spec: SweepSpec, history: History, base: BacktestOptions, mapper: Mapper
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(every in-sample result, one row per window: the best set and its out-of-sample result).

    The best set of a window is the one with the highest `spec.metric` in sample (ties: the first in
    the file's order); it is then run, unchanged, on the following out-of-sample days.
    """
    assert spec.walk_forward is not None
    wins = windows(history, base, spec.walk_forward)
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
