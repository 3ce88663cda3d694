"""The chaos run's summary (issue 13 point 3): from the per-scenario result rows, the scenarios by
broker and by fault kind (with how many of each failed), the invariant checks made and broken, the
failing seeds with the command that replays each, and the time.

`summarize(rows, wall_s)` is pure; `write(summary, stem)` writes `<stem>.json` and `<stem>.md`
(`test-artifacts/chaos-summary` for `make chaos`, `test-artifacts/chaos-smoke-summary` for the subset
in `make test`). A row is what `test_chaos.run_one` returns: seed, broker ("ibkr/178"), faults
(fault kinds, in order), ok, known_defect, violations (invariant → count), seconds, error.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path
from typing import Any


def replay_command(seed: int) -> str:
    return f".venv/bin/pytest tests/chaos/test_chaos.py -q -p no:randomly --chaos-seed {seed}"


def _failure_kinds(rows: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """For each broken invariant: how many failed scenarios drew each fault kind (where to look)."""
    out: dict[str, Counter[str]] = {}
    for r in rows:
        for name, n in r["violations"].items():
            if n:
                out.setdefault(name, Counter()).update(set(r["faults"]) or {"none"})
    return {k: dict(v.most_common()) for k, v in sorted(out.items())}


def summarize(rows: list[dict[str, Any]], wall_s: float, workers: int | None = None) -> dict[str, Any]:
    by_fault: Counter[str] = Counter()
    failed_fault: Counter[str] = Counter()
    by_broker: Counter[str] = Counter()
    checks: Counter[str] = Counter()
    violated: Counter[str] = Counter()
    for r in rows:
        by_broker[r["broker"]] += 1
        by_fault.update(set(r["faults"]))
        if not r["ok"]:
            failed_fault.update(set(r["faults"]))
        for name, n in r["violations"].items():
            checks[name] += 1
            if n:
                violated[name] += 1
    secs = sorted(float(r["seconds"]) for r in rows)
    failed = sorted(r["seed"] for r in rows if not r["ok"] and not r.get("known_defect"))
    return {
        "scenarios": len(rows),
        "passed": sum(1 for r in rows if r["ok"]),
        "failed_seeds": failed,
        "failed_known_defect_seeds": sorted(r["seed"] for r in rows if not r["ok"] and r.get("known_defect")),
        "replay": {str(s): replay_command(s) for s in failed},
        "errors": {str(r["seed"]): r["error"] for r in rows if r.get("error")},
        "failures_by_invariant_and_fault": _failure_kinds(rows),
        "by_broker": dict(sorted(by_broker.items())),
        "by_fault_kind": {
            k: {"scenarios": n, "failed": failed_fault.get(k, 0)} for k, n in sorted(by_fault.items())
        },
        "invariant_checks": dict(sorted(checks.items())),
        "invariant_checks_total": sum(checks.values()),
        "invariant_violations": dict(sorted(violated.items())),
        "scenario_seconds_total": round(sum(secs), 1),
        "scenario_seconds_mean": round(sum(secs) / len(secs), 2) if secs else 0.0,
        "scenario_seconds_p95": secs[max(0, math.ceil(0.95 * len(secs)) - 1)] if secs else 0.0,
        "scenario_seconds_max": secs[-1] if secs else 0.0,
        "scenario_cpu_seconds_total": round(sum(float(r.get("cpu_seconds", 0)) for r in rows), 1),
        "wall_seconds": round(wall_s, 1),
        "workers": workers,
    }


def to_markdown(s: dict[str, Any]) -> str:
    lines = [
        "# Chaos run",
        "",
        f"{s['scenarios']} scenarios, {s['passed']} passed, {len(s['failed_seeds'])} failed, "
        f"{len(s['failed_known_defect_seeds'])} failed on a known defect; wall {s['wall_seconds']} s "
        f"(workers: {s['workers']}), scenario time {s['scenario_seconds_total']} s (mean "
        f"{s['scenario_seconds_mean']} s, p95 {s['scenario_seconds_p95']} s, "
        f"max {s['scenario_seconds_max']} s); CPU {s['scenario_cpu_seconds_total']} s (Joe and the "
        "simulators, SIGKILLed children not counted).",
        "",
        "| broker | scenarios |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in s["by_broker"].items()],
        "",
        "| fault kind | scenarios | failed |",
        "|---|---|---|",
        *[f"| {k} | {v['scenarios']} | {v['failed']} |" for k, v in s["by_fault_kind"].items()],
        "",
        f"Invariant checks: {s['invariant_checks_total']}.",
        "",
        "| invariant | checked | broken |",
        "|---|---|---|",
        *[f"| {k} | {n} | {s['invariant_violations'].get(k, 0)} |" for k, n in s["invariant_checks"].items()],
        "",
    ]
    if s["failed_seeds"]:
        lines += ["Failed seeds (replay each alone):", ""]
        lines += [f"- {seed}: `{cmd}`" for seed, cmd in s["replay"].items()]
    if s["failed_known_defect_seeds"]:
        lines += ["", f"Known-defect seeds that failed: {s['failed_known_defect_seeds']}"]
    return "\n".join(lines) + "\n"


def write(summary: dict[str, Any], stem: Path) -> None:
    stem.parent.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".json").write_text(json.dumps(summary, indent=2) + "\n")
    stem.with_suffix(".md").write_text(to_markdown(summary))
