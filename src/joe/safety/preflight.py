"""What every run (and later the daemon's every tick) checks before trading: the kill file, the
trading state, the audit chain.

A broken audit chain blocks live and shadow (`SafetyRefused`, exit 3) and is a loud warning in
paper (principle 1: paper always works; principle 4: say so). The warnings go to the console,
the log, the audit log, an alert and the report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from joe.audit.anchor import StoreAnchor
from joe.audit.health import ChainHealth, chain_health
from joe.core.logging import get_logger
from joe.safety.control import SafetyContext, check_kill_file
from joe.safety.kill_switch import KillFile
from joe.safety.trading_state import StateRecord

if TYPE_CHECKING:
    from joe.runtime.bootstrap import Runtime

log = get_logger("joe.safety.preflight")


class SafetyRefused(RuntimeError):
    """The run must not trade at all (exit 3); nothing was sent."""


@dataclass
class Preflight:
    """The result: the state entries are judged against, the kill file, the chain, warnings to show."""

    state: StateRecord
    kill_file: KillFile | None
    chain: ChainHealth
    warnings: list[str] = field(default_factory=list)

    @property
    def entries_allowed(self) -> bool:
        return self.state.state.allows_entries()


def preflight(rt: Runtime, ctx: SafetyContext) -> Preflight:
    """Run the checks (see the module docstring). Raises `SafetyRefused` for live/shadow on a broken chain."""
    kf = check_kill_file(ctx)
    chain = chain_health(rt.data_dir / "audit", StoreAnchor(rt.store).load_anchor())
    warnings: list[str] = []
    if not chain.ok:
        rt.audit.record("audit.chain_broken", {"mode": rt.mode, "summary": chain.summary})
        ctx.alerts.audit_broken(chain.summary)
        log.error("audit.chain_broken", mode=rt.mode, summary=chain.summary)
        if rt.mode in ("live", "shadow"):
            raise SafetyRefused(
                f"the audit chain is broken ({chain.summary}); {rt.mode} trading is blocked until it is "
                "investigated — run `joe audit verify`"
            )
        warnings.append(f"AUDIT CHAIN BROKEN — {chain.summary}; paper continues, run `joe audit verify`")
    state = ctx.states.current()
    if not state.state.allows_entries():
        warnings.append(
            f"trading is {state.state.value.upper()} (by {state.by}: {state.reason}); new entries refused"
            + (f"; kill file {kf.path} present" if kf else "")
            + " — `joe resume --reason ...` to resume"
        )
    return Preflight(state, kf, chain, warnings)
