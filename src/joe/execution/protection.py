"""What the `PositionMonitor` watches and what it asks for: positions under watch, triggers, exit and
stop-modify requests, and the small protocols the `OrderManager` implements for it.

The monitor never places orders itself. It asks an `ExitRequester` (the `OrderManager`) for a
reduce-only exit or for a broker-side stop to be moved; the broker's confirmation comes back through
`PositionMonitor.confirm_stop` / `refuse_stop_modify` / `close`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import NamedTuple, Protocol

from joe.core.ids import client_order_id
from joe.core.models import Side

_ZERO = Decimal(0)
_BUY = Side.BUY


class TriggerKind(StrEnum):
    STOP = "stop"
    TAKE_PROFIT = "take_profit"


class ExitReason(StrEnum):
    BACKUP_STOP = "backup_stop"  # price through the stop longer than the grace period, broker has not filled
    TIME = "time"  # the strategy's time-based exit


@dataclass(frozen=True, slots=True)
class TrailingStop:
    """Trail the stop `distance` (price units) behind the best price seen, moving it only when it
    tightens by at least `step` (so the broker sees a few modifies, not one per tick)."""

    distance: Decimal
    step: Decimal

    def __post_init__(self) -> None:
        if self.distance <= 0:
            raise ValueError(f"trailing distance must be > 0, got {self.distance}")
        if self.step <= 0:
            raise ValueError(f"trailing step must be > 0, got {self.step}")


@dataclass(frozen=True, slots=True, init=False)
class WatchedPosition:
    """An open position handed to the monitor. `side` is the entry side (BUY = long).

    `stop` is the protective stop resting at the broker (the level the broker confirmed);
    `take_profit` the resting target, if any; `exit_at` a time-based exit (UTC).
    Frozen; made once per position opened, on the quote path when a strategy re-opens from a trigger,
    so `__init__` is written out (the dataclass one's nine `object.__setattr__` calls and a separate
    `__post_init__` frame cost about a third more; the fields are set through their slots directly).
    """

    position_id: str
    symbol: str
    side: Side
    quantity: Decimal
    entry_price: Decimal
    stop: Decimal | None = None
    take_profit: Decimal | None = None
    trailing: TrailingStop | None = None
    exit_at: datetime | None = None

    def __init__(
        self,
        position_id: str,
        symbol: str,
        side: Side,
        quantity: Decimal,
        entry_price: Decimal,
        stop: Decimal | None = None,
        take_profit: Decimal | None = None,
        trailing: TrailingStop | None = None,
        exit_at: datetime | None = None,
    ) -> None:
        # Decimal constants and a module-level enum member (reading `Side.BUY` costs a descriptor call).
        if not position_id:
            raise ValueError("position_id must not be empty")
        if quantity <= _ZERO:
            raise ValueError(
                f"{position_id}: quantity must be > 0 (side gives the direction), got {quantity}"
            )
        if entry_price <= _ZERO:
            raise ValueError(f"{position_id}: entry_price must be > 0, got {entry_price}")
        if trailing is not None and stop is None:
            raise ValueError(f"{position_id}: a trailing stop needs a resting stop to move")
        if (
            stop is not None
            and take_profit is not None
            and (stop >= take_profit if side is _BUY else stop <= take_profit)
        ):
            where = "below" if side is _BUY else "above"
            raise ValueError(f"{position_id}: the stop {stop} must be {where} the take-profit {take_profit}")
        if exit_at is not None and exit_at.tzinfo is None:
            raise ValueError(f"{position_id}: exit_at must be timezone-aware (UTC)")
        s = _WP_SET
        s[0](self, position_id)
        s[1](self, symbol)
        s[2](self, side)
        s[3](self, quantity)
        s[4](self, entry_price)
        s[5](self, stop)
        s[6](self, take_profit)
        s[7](self, trailing)
        s[8](self, exit_at)


# The slots' own setters, in field order: they bypass the frozen class's __setattr__ (which refuses).
_WP_SET = tuple(getattr(WatchedPosition, f).__set__ for f in WatchedPosition.__dataclass_fields__)


class Trigger(NamedTuple):
    """The price crossed a position's stop or take-profit (the broker's order should be filling).
    A named tuple: one is made per crossing on the hot path."""

    position_id: str
    symbol: str
    kind: TriggerKind
    level: Decimal
    price: float
    ts_ns: int


@dataclass(frozen=True, slots=True)
class ExitRequest:
    """A reduce-only market exit of the whole position. `client_order_id` is deterministic in the
    position id and the reason, so a repeat (after a restart) is recognised as the same order."""

    position_id: str
    symbol: str
    side: Side  # the closing side
    quantity: Decimal
    reason: ExitReason
    price: float  # the mid that prompted it
    ts_ns: int
    reduce_only: bool = True

    @property
    def client_order_id(self) -> str:
        return client_order_id(self.position_id, f"exit:{self.reason.value}")

    @property
    def ts(self) -> datetime:
        return datetime.fromtimestamp(self.ts_ns / 1e9, UTC)


@dataclass(frozen=True, slots=True)
class StopModify:
    """Move the broker-side stop of a position to `new_stop` (always tighter than `old_stop`)."""

    position_id: str
    symbol: str
    old_stop: Decimal
    new_stop: Decimal
    ts_ns: int


class ExitRequester(Protocol):
    """What the monitor needs from the `OrderManager`. Both calls must return at once (they are
    made from the quote hot path): the manager queues the work and answers later through
    `PositionMonitor.close`, `confirm_stop` or `refuse_stop_modify`."""

    def request_exit(self, request: ExitRequest) -> None: ...

    def request_stop_modify(self, request: StopModify) -> None: ...


@dataclass(frozen=True, slots=True)
class RestingStop:
    """The protective stop the broker holds for a position, as the `OrderManager` knows it."""

    quantity: Decimal
    stop_price: Decimal


class ProtectionView(Protocol):
    """Read-only protection state from the `OrderManager` (None: no working stop at the broker)."""

    def resting_stop(self, position_id: str) -> RestingStop | None: ...


@dataclass(frozen=True, slots=True)
class ProtectionGap:
    """A position that breaks the protection invariant (DESIGN: every open position has a resting
    stop at the broker whose size equals the position)."""

    position_id: str
    symbol: str
    problem: str


def protection_gaps(held: Iterable[tuple[str, str, Decimal]], view: ProtectionView) -> list[ProtectionGap]:
    """The gaps among `held` (position id, symbol, quantity in units/contracts): no resting stop at the
    broker, or one whose size is not the position's (DESIGN, "Protection is an invariant")."""
    gaps = []
    for pid, symbol, qty in held:
        rs = view.resting_stop(pid)
        if rs is None:
            gaps.append(ProtectionGap(pid, symbol, "no resting stop at the broker"))
        elif rs.quantity != qty:
            gaps.append(ProtectionGap(pid, symbol, f"stop size {rs.quantity} != position size {qty}"))
    return gaps
