"""Protections as small policies (Freqtrade's model): each looks at recent closed trades and answers one
question — lock a symbol, or everything, until when, and why?

Locks are computed from the trades in the store every time, so they survive restarts with nothing to
persist. The `ProtectionLocks` rule of the `RiskGate` refuses entries while a lock holds.
"""

from joe.safety.protections.policies import (
    ClosedTrade,
    Cooldown,
    Lock,
    LowProfitSymbols,
    MaxDrawdownLock,
    Protection,
    StoplossGuard,
    active_locks,
    default_protections,
)

__all__ = [
    "ClosedTrade",
    "Cooldown",
    "Lock",
    "LowProfitSymbols",
    "MaxDrawdownLock",
    "Protection",
    "StoplossGuard",
    "active_locks",
    "default_protections",
]
