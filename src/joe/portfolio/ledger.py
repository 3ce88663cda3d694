"""`PaperLedger`: the pure accounting of a paper account — cash, positions, realised PnL.

Definitions (the property tests hold these):
- equity = cash + Σ quantity × mark over open positions (quantity signed: short < 0);
- a closed trade's realised PnL = quantity × (exit − entry) − entry commission − exit commission;
- realised PnL of the account = Σ realised PnL over closed trades;
- equity = starting cash + realised + Σ open (quantity × (mark − entry) − entry commission).
Without `allow_margin` the account is a cash account: a buy needs the cash, and short selling
(which needs a margin account at every broker) is refused, so cash can never go negative. With
it, shorts are allowed and gross exposure is capped at `max_leverage` × equity at entry.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal

from joe.core.models import ZERO, Direction


class LedgerError(Exception):
    """A ledger operation that would break the account's rules (insufficient cash, short on cash)."""


@dataclass(frozen=True, slots=True)
class PaperPosition:
    """One open paper position with its protective levels."""

    position_id: str
    symbol: str
    quantity: Decimal  # signed
    entry_price: Decimal
    entry_commission: Decimal
    opened_at: datetime
    signal_id: str
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None
    trailing_distance: Decimal | None = None
    best_price: Decimal | None = None  # high-water (long) / low-water (short) for the trail
    mark: Decimal | None = None

    @property
    def direction(self) -> Direction:
        return Direction.LONG if self.quantity > 0 else Direction.SHORT

    @property
    def mark_price(self) -> Decimal:
        return self.mark if self.mark is not None else self.entry_price

    @property
    def unrealized_pnl(self) -> Decimal:
        return self.quantity * (self.mark_price - self.entry_price)


@dataclass(frozen=True, slots=True)
class ClosedTrade:
    """A round trip; `pnl` is net of both commissions."""

    position_id: str
    symbol: str
    quantity: Decimal
    entry_price: Decimal
    exit_price: Decimal
    opened_at: datetime
    closed_at: datetime
    reason: str
    pnl: Decimal
    signal_id: str


@dataclass
class PaperLedger:
    """Cash, open positions and closed trades of one paper account."""

    starting_cash: Decimal
    cash: Decimal
    allow_margin: bool = False
    max_leverage: Decimal = Decimal(2)
    positions: dict[str, PaperPosition] = field(default_factory=dict)
    closed: list[ClosedTrade] = field(default_factory=list)
    realized_pnl: Decimal = ZERO

    @classmethod
    def new(
        cls, starting_cash: Decimal, allow_margin: bool = False, max_leverage: Decimal = Decimal(2)
    ) -> PaperLedger:
        return cls(
            starting_cash=starting_cash,
            cash=starting_cash,
            allow_margin=allow_margin,
            max_leverage=max_leverage,
        )

    @property
    def gross_exposure(self) -> Decimal:
        return sum((abs(p.quantity * p.mark_price) for p in self.positions.values()), ZERO)

    @property
    def equity(self) -> Decimal:
        return self.cash + sum((p.quantity * p.mark_price for p in self.positions.values()), ZERO)

    @property
    def unrealized_pnl(self) -> Decimal:
        return sum((p.unrealized_pnl for p in self.positions.values()), ZERO)

    def check_open(self, pos: PaperPosition) -> None:
        """Raise `LedgerError` if the account cannot take this opening fill; changes nothing."""
        if pos.position_id in self.positions:
            raise LedgerError(f"position {pos.position_id} is already open")
        if pos.quantity == 0:
            raise LedgerError("cannot open a zero-quantity position")
        if pos.quantity < 0 and not self.allow_margin:
            raise LedgerError("short selling needs a margin account (set paper.allow_margin: true)")
        cost = pos.quantity * pos.entry_price + pos.entry_commission
        if not self.allow_margin and cost > self.cash:
            raise LedgerError(f"insufficient cash: need {cost:.2f}, have {self.cash:.2f}")
        if self.allow_margin:
            limit = self.max_leverage * self.equity
            after = self.gross_exposure + abs(pos.quantity * pos.entry_price)
            if after > limit:
                raise LedgerError(
                    f"buying power exceeded: gross exposure {after:.2f} > "
                    f"{self.max_leverage}x equity {limit:.2f}"
                )

    def open(self, pos: PaperPosition) -> PaperPosition:
        """Book an opening fill. Raises `LedgerError` (changing nothing) if the account cannot take it."""
        self.check_open(pos)
        cost = pos.quantity * pos.entry_price + pos.entry_commission
        self.cash -= cost
        best = pos.best_price if pos.best_price is not None else pos.entry_price
        pos = replace(pos, best_price=best, mark=pos.mark if pos.mark is not None else pos.entry_price)
        self.positions[pos.position_id] = pos
        return pos

    def mark(self, position_id: str, price: Decimal) -> PaperPosition:
        pos = replace(self.positions[position_id], mark=price)
        self.positions[position_id] = pos
        return pos

    def update(self, pos: PaperPosition) -> None:
        """Replace an open position's levels (stop ratchet, best price); quantity may not change."""
        old = self.positions[pos.position_id]
        if old.quantity != pos.quantity or old.entry_price != pos.entry_price:
            raise LedgerError("update() may not change quantity or entry price")
        self.positions[pos.position_id] = pos

    def close(
        self, position_id: str, exit_price: Decimal, commission: Decimal, ts: datetime, reason: str
    ) -> ClosedTrade:
        """Book a closing fill for the whole position and return the closed trade."""
        pos = self.positions.pop(position_id)
        self.cash += pos.quantity * exit_price - commission
        pnl = pos.quantity * (exit_price - pos.entry_price) - pos.entry_commission - commission
        trade = ClosedTrade(
            position_id,
            pos.symbol,
            pos.quantity,
            pos.entry_price,
            exit_price,
            pos.opened_at,
            ts,
            reason,
            pnl,
            pos.signal_id,
        )
        self.closed.append(trade)
        self.realized_pnl += pnl
        return trade
