"""The chaos suite's seeds and its run summary (issue 13).

Seeds: `--chaos-seeds A:B` runs seeds A..B-1 (`make chaos` runs 0:1000), `--chaos-seed N` replays one,
and without either the fixed smoke subset `SMOKE` runs (it is part of `make test`). Each scenario's
result is appended to `test-artifacts/chaos/results.jsonl` (`JOE_CHAOS_ARTIFACTS`: another folder); at
the end of the session the controller
writes `test-artifacts/chaos/summary.json` (scenarios by broker and fault kind, invariant checks,
failures with their seeds, time).
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("JOE_CHAOS_ARTIFACTS") or ROOT / "test-artifacts" / "chaos")
RESULTS = ARTIFACTS / "results.jsonl"
SMOKE = (0, 1, 2, 4)  # part of `make test` (IBKR 178/157, Capital hedging); `make chaos` runs the thousand


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("chaos")
    g.addoption("--chaos-seeds", default=None, help="run the chaos scenarios of seeds A:B (B excluded)")
    g.addoption("--chaos-seed", type=int, default=None, help="replay one chaos scenario by its seed")


def seeds(config: pytest.Config) -> list[int]:
    one = config.getoption("--chaos-seed", None)
    if one is not None:
        return [int(one)]
    span = config.getoption("--chaos-seeds", None)
    if span:
        a, _, b = str(span).partition(":")
        return list(range(int(a), int(b)))
    return list(SMOKE)


# Seeds that meet a defect of code others own (joe/execution, joe/safety), named here until fixed.
# Not strict: a chaos scenario's path depends on timing, so a seed may miss its defect on a given run;
# each deterministic case has a strict xfail in test_found.py.
KNOWN_DEFECTS: dict[int, str] = {
    6: "joe/execution: a reconciliation's resend of a NEW order (a lost-protection replacement stop) "
    "races the lost-protection reaction's submit of the same order; StaleOrderError escapes the pass",
    20: "joe/safety + joe/execution: a lost-protection replacement stop outlives its position (the "
    "target closed it) and a gap sells short (strict: test_found.py)",
    129: "joe/safety + joe/execution: two lost-protection replacement stops and the bracket's stop all "
    "fill after a partial entry, a partial exit and a restart; the position is reversed to short",
    83: "joe/execution: StaleOrderError escapes a reconciliation pass (as seed 6)",
    146: "joe/execution: StaleOrderError escapes a reconciliation pass (as seed 6)",
    7: "joe/execution: StaleOrderError escapes a reconciliation pass (as seed 6; met after the merge)",
    62: "joe/execution (Capital exit): an exit that cancelled the deal's stop, then did not complete, "
    "stays ACCEPTED with nothing at the broker; the position rests naked and trading stays ACTIVE",
}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "chaos_seed" in metafunc.fixturenames:
        params = [
            pytest.param(s, marks=pytest.mark.xfail(reason=KNOWN_DEFECTS[s], strict=False))
            if s in KNOWN_DEFECTS
            else s
            for s in seeds(metafunc.config)
        ]
        metafunc.parametrize("chaos_seed", params)


def _controller(config: pytest.Config) -> bool:
    return not hasattr(config, "workerinput")


def pytest_sessionstart(session: pytest.Session) -> None:
    if _controller(session.config) and _chaos_selected(session.config):
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        RESULTS.unlink(missing_ok=True)
        session.config._chaos_t0 = time.monotonic()  # type: ignore[attr-defined]


def _chaos_selected(config: pytest.Config) -> bool:
    return any("chaos" in str(a) for a in config.args) or bool(
        config.getoption("--chaos-seeds", None) or config.getoption("--chaos-seed", None) is not None
    )


def record(result: dict[str, Any]) -> None:
    """Append one scenario's result (one short line: O_APPEND keeps parallel workers' lines whole)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("a") as fh:
        fh.write(json.dumps(result) + "\n")


def _failure_kinds(rows: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """For each broken invariant: how many failed scenarios drew each fault kind (where to look)."""
    out: dict[str, Counter[str]] = {}
    for r in rows:
        for name, n in r["violations"].items():
            if n:
                out.setdefault(name, Counter()).update(set(r["faults"]) or {"none"})
    return {k: dict(v.most_common()) for k, v in sorted(out.items())}


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    t0 = getattr(session.config, "_chaos_t0", None)
    if not _controller(session.config) or t0 is None or not RESULTS.exists():
        return
    rows = [json.loads(x) for x in RESULTS.read_text().splitlines() if x.strip()]
    by_fault: Counter[str] = Counter()
    by_broker: Counter[str] = Counter()
    checks: Counter[str] = Counter()
    violated: Counter[str] = Counter()
    for r in rows:
        by_broker[r["broker"]] += 1
        by_fault.update(set(r["faults"]))
        for name, n in r["violations"].items():
            checks[name] += 1
            if n:
                violated[name] += 1
    summary = {
        "scenarios": len(rows),
        "failed_seeds": sorted(r["seed"] for r in rows if not r["ok"] and not r.get("known_defect")),
        "failed_known_defect_seeds": sorted(r["seed"] for r in rows if not r["ok"] and r.get("known_defect")),
        "failures_by_invariant_and_fault": _failure_kinds(rows),
        "by_broker": dict(sorted(by_broker.items())),
        "by_fault_kind": dict(sorted(by_fault.items())),
        "invariant_checks": dict(sorted(checks.items())),
        "invariant_violations": dict(sorted(violated.items())),
        "scenario_seconds_total": round(sum(r["seconds"] for r in rows), 1),
        "wall_seconds": round(time.monotonic() - t0, 1),
    }
    (ARTIFACTS / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    tr = session.config.pluginmanager.get_plugin("terminalreporter")
    if tr is not None:
        tr.write_line(
            f"chaos: {summary['scenarios']} scenarios, {len(summary['failed_seeds'])} failed, "
            f"{summary['wall_seconds']} s; summary in {ARTIFACTS / 'summary.json'}"
        )
