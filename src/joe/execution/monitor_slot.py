"""`MonitorSlot`: the per-position record of the `PositionMonitor` (joe.execution.position_monitor).

Only the monitor creates and changes these (a module of its own to keep the monitor to its behaviour).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal

from joe.execution.protection import WatchedPosition

__all__ = ["MonitorSlot"]


@dataclass(slots=True)
class MonitorSlot:
    """One watched position as the `PositionMonitor` keeps it: the `WatchedPosition` it was given, its
    slot in the level books, its instrument id, and the state of its stop, target, exits and trail.
    Levels are `Decimal` as given (quote currency) with float copies for the crossing check; times
    are int nanoseconds UTC."""

    spec: WatchedPosition
    slot: int
    inst: int
    sign: int  # +1 long, -1 short
    qty: Decimal
    stop: Decimal | None  # broker-confirmed
    stop_f: float
    tp_f: float
    through_since: int | None = None  # ns: first quote through the stop (broker fill awaited)
    tp_touched: bool = False
    exit_requested: bool = False
    modify_pending: Decimal | None = None
    refused_stop: Decimal | None = None
    best: float = math.nan  # trailing: best mid since added
    split_ref: float = math.nan  # a suspected split's reference price: held while set (monitor_splits)
