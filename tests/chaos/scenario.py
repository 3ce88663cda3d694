"""The chaos scenario generator (issue 13): one integer seed → one `Scenario`, deterministic and pure.

A scenario fixes the broker and its variant (IBKR at TWS server version 178 or 157; Capital.com with
a hedging or a netting account), the instruments, and a list of `Step`s over simulated days: each
day opens with a price path per instrument (a drift, a gap down through the stops, a limit-up move
through the targets, a halt), then Joe's signals (brackets) and exits, the account owner's own
trades, and faults drawn from the broker simulator's fault plan (plus the common ones: a hard crash
of the Joe process, SIGKILL at a point of the order flow, clock skew, the audit log's disk full), each
armed right before a random order action so it lands at a random point of the flow. Nothing here
touches a network:
`generate(seed)` is the whole definition, so a seed is a complete replay.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

# The brokers and their variants: (broker, variant). IBKR: TWS API server version; Capital: account mode.
VARIANTS: tuple[tuple[str, str], ...] = (
    ("ibkr", "178"),
    ("ibkr", "157"),
    ("capital", "hedging"),
    ("capital", "netting"),
)

SYMBOLS = {"ibkr": ("AAPL", "MSFT"), "capital": ("GOLD", "US100")}

# Fault kinds armed before an order action (the point of the flow is the action they precede).
# IBKR: names of `IBKRSimulator` faults or scripted hooks; Capital: `CapitalSimulator` faults.
IBKR_FAULTS: tuple[str, ...] = (
    "disconnect_before_submit",  # every socket dropped right before the submit
    "disconnect_after_submit",  # the socket dropped right after the first live execution
    "lost_before_ack",  # the placeOrder is lost on the way (no acknowledgement of any kind)
    "slow_ack",  # TWS processes the placeOrder late (place_latency)
    "duplicate_exec",
    "correct_exec",  # TWS corrects the next execution (a smaller quantity)
    "commission_first",  # the commission report arrives before its execution
    "delay_fills",
    "partial_then_cancel",  # a limit entry fills in part, then Joe cancels the rest
    "connectivity_1100",  # 1100, then 1101 (data lost) or 1102 (data maintained)
    "nightly_reset",
    "broker_cancels_stop",  # the broker cancels Joe's protective stop (202)
    "reject_next",
    "refuse_cancel",
)
CAPITAL_FAULTS: tuple[str, ...] = (
    "http_5xx_storm",
    "http_429_storm",
    "http_504_html",
    "session_expiry",
    "confirm_404",
    "ws_drop",
    "stale_quotes",
    "executed_but_timed_out",  # delay_response: the deal happens, the client times out
    "latency",
    "rotate_tokens",
    "owner_closes_deal",  # the account owner closes Joe's deal on the platform
)
COMMON_FAULTS: tuple[str, ...] = ("crash_restart", "sigkill_restart", "clock_skew", "owner_trade")
# Fault kinds added after the first thousand seeds were fixed: drawn from a second random stream, so
# a seed's scenario is its old one plus at most one of these (`EXTRA_RATE` of the scenarios).
EXTRA_FAULTS: dict[str, tuple[str, ...]] = {
    "ibkr": ("audit_full", "disconnect_after_ack"),  # after ack: the fills come while Joe is away
    "capital": ("audit_full",),
}
EXTRA_RATE = 0.2
SIGKILL_POINTS: tuple[str, ...] = ("after_write", "in_flight", "after_send")

PATHS: tuple[str, ...] = ("drift", "drift", "gap_down", "limit_up", "halt")


@dataclass(frozen=True)
class Step:
    """One thing that happens: `kind` is `day`, `entry`, `exit`, `reconcile` or `fault`."""

    kind: str
    args: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        inner = ",".join(f"{k}={v}" for k, v in sorted(self.args.items()))
        return f"{self.kind}({inner})"


@dataclass(frozen=True)
class Scenario:
    seed: int
    broker: str
    variant: str
    symbols: tuple[str, ...]
    steps: tuple[Step, ...]

    @property
    def faults(self) -> list[str]:
        return [s.args["name"] for s in self.steps if s.kind == "fault"]

    def describe(self) -> str:
        return f"seed {self.seed}: {self.broker}/{self.variant} " + " ".join(str(s) for s in self.steps)


def generate(seed: int) -> Scenario:
    """The scenario of `seed` (any int ≥ 0). Same seed, same scenario, on every machine."""
    rng = random.Random(f"joe-chaos-{seed}")
    broker, variant = VARIANTS[seed % len(VARIANTS)]
    symbols = SYMBOLS[broker]
    pool = (IBKR_FAULTS if broker == "ibkr" else CAPITAL_FAULTS) + COMMON_FAULTS
    days = rng.randint(2, 4)
    n_faults = rng.randint(1, 3)
    steps: list[Step] = []
    sig_n = 0
    held: list[str] = []  # signal ids Joe may hold (the generator does not know what filled)
    for day in range(days):
        steps.append(Step("day", {"n": day, "paths": {s: rng.choice(PATHS) for s in symbols}}))
        for _ in range(rng.randint(1, 3)):
            free = [s for s in symbols if not any(h.endswith(f"-{s}") for h in held)]
            if free and (not held or rng.random() < 0.6):
                sig_n += 1
                sid = f"chaos{seed}-{sig_n}-{rng.choice(free)}"
                held.append(sid)
                steps.append(Step("entry", {"signal": sid, "qty": rng.choice([1, 2, 3, 5])}))
            elif held:
                sid = rng.choice(held)
                partial = rng.random() < 0.3
                steps.append(Step("exit", {"signal": sid, "part": partial}))
                if not partial:
                    held.remove(sid)
    # Faults at random points of the order flow: before a random entry/exit/day step.
    actions = [i for i, s in enumerate(steps) if s.kind in ("entry", "exit", "day")]
    for _ in range(n_faults):
        at = rng.choice(actions)
        name = rng.choice(pool)
        args: dict[str, Any] = {"name": name}
        if name == "sigkill_restart":
            args["point"] = rng.choice(SIGKILL_POINTS)
        elif name == "clock_skew":
            args["seconds"] = rng.choice([-7200, -90, 90, 3600])
        elif name in ("http_5xx_storm", "http_429_storm"):
            args["count"] = rng.randint(1, 4)
        elif name == "confirm_404":
            args["polls"] = rng.randint(1, 6)
        elif name == "connectivity_1100":
            args["restore"] = rng.choice([1101, 1102])
        elif name == "owner_trade":
            args["symbol"] = rng.choice(symbols)
        steps.insert(at, Step("fault", args))
        actions = [i for i, s in enumerate(steps) if s.kind in ("entry", "exit", "day")]
    extra = random.Random(f"joe-chaos-extra-{seed}")
    if extra.random() < EXTRA_RATE:  # the audit disk fills (or the socket drops) before a random action
        at = extra.choice(actions)
        steps.insert(at, Step("fault", {"name": extra.choice(EXTRA_FAULTS[broker])}))
    steps.append(Step("reconcile"))
    return Scenario(seed, broker, variant, symbols, tuple(steps))


def fault_counts(seeds: range | list[int]) -> Counter[str]:
    """How many scenarios of `seeds` draw each fault kind (for the run summary)."""
    c: Counter[str] = Counter()
    for seed in seeds:
        c.update(set(generate(seed).faults))
    return c
