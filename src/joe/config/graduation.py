"""The demo-live record a real-money account needs (issue 19: the graduation gate).

Besides the paper track record, real money at a broker needs at least `live.min_demo_days` (10)
days of live or shadow operation against the *same broker's* demo/paper account with

- zero unexplained reconciliation mismatches,
- zero unprotected-position incidents,
- zero UNKNOWN orders left unresolved (now, in the store),

or the audited `live.demo_record_override`. The record is read from the store and the hash-chained
audit log (`joe.safety.demo_record.read_demo_record`), never from a file anyone could edit; this
module only holds its shape and the rule, so `joe.config.mode` stays import-light.

The rule: only days *after* the last incident count (an incident restarts the count), and an
unresolved UNKNOWN order fails the gate whatever the count. A day is a UTC calendar day with at
least one finished live or shadow run at the broker's demo/paper account (runs against a local
simulator are shown but never counted: a simulator proves the code, not the account).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

# Incident kinds (the audit events they are read from: joe.safety.demo_record).
UNEXPLAINED = "unexplained_mismatch"
UNPROTECTED = "unprotected_position"


@dataclass(frozen=True, slots=True)
class Incident:
    """One thing that makes the record dirty: its UTC day, kind, and the audit event that says so."""

    day: date
    kind: str
    detail: str


@dataclass(frozen=True, slots=True)
class DemoRecord:
    """The demo-live record of one broker (`days` sorted, distinct)."""

    broker: str
    days: tuple[date, ...] = ()
    incidents: tuple[Incident, ...] = ()
    unresolved_unknown: tuple[str, ...] = ()  # client order ids still UNKNOWN at this broker
    simulator_days: int = 0  # days run only against a local simulator: shown, never counted
    problem: str | None = None  # why the record could not be read (then it counts nothing)
    notes: list[str] = field(default_factory=list)

    @property
    def last_incident(self) -> Incident | None:
        return max(self.incidents, key=lambda i: i.day) if self.incidents else None

    @property
    def clean_days(self) -> tuple[date, ...]:
        """The days that count: those after the last incident's day."""
        if self.problem is not None:
            return ()
        last = self.last_incident
        return tuple(d for d in self.days if last is None or d > last.day)

    def verdict(self, min_days: int) -> tuple[bool, str, list[str]]:
        """(passed, what the record holds, what is missing) against `min_days` clean days."""
        if self.problem is not None:
            return False, f"demo-live record unavailable: {self.problem}", ["a readable record"]
        clean = len(self.clean_days)
        have = f"{clean} clean demo-live day(s) at {self.broker} ({len(self.days)} in all"
        if self.simulator_days:
            have += f"; {self.simulator_days} simulator-only day(s) not counted"
        have += ")"
        last = self.last_incident
        if last is not None:
            have += f"; last incident {last.day.isoformat()}: {last.kind} ({last.detail})"
        missing: list[str] = []
        if clean < min_days:
            missing.append(f"{min_days - clean} more clean day(s) (needs >= {min_days})")
        if self.unresolved_unknown:
            ids = ", ".join(self.unresolved_unknown[:5])
            missing.append(f"{len(self.unresolved_unknown)} UNKNOWN order(s) to resolve ({ids})")
        return not missing, have, missing

    def lines(self, min_days: int) -> list[str]:
        """What `joe mode` prints about the record."""
        ok, have, missing = self.verdict(min_days)
        out = [f"demo-live record ({'complete' if ok else 'incomplete'}): {have}"]
        if missing:
            out.append("missing: " + "; ".join(missing))
        if self.incidents:
            shown = self.incidents[-5:]
            out += [f"  incident {i.day.isoformat()} {i.kind}: {i.detail}" for i in shown]
        out += [f"  {n}" for n in self.notes]
        return out

    def to_dict(self, min_days: int) -> dict[str, object]:
        ok, have, missing = self.verdict(min_days)
        return {
            "broker": self.broker,
            "complete": ok,
            "min_days": min_days,
            "days": [d.isoformat() for d in self.days],
            "clean_days": len(self.clean_days),
            "simulator_days": self.simulator_days,
            "incidents": [
                {"day": i.day.isoformat(), "kind": i.kind, "detail": i.detail} for i in self.incidents
            ],
            "unresolved_unknown": list(self.unresolved_unknown),
            "problem": self.problem,
            "summary": have,
            "missing": missing,
        }
