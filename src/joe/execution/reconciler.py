"""`Reconciler`: at startup (before any intent) and every few minutes, Joe's record is checked
against the broker's word (DESIGN.md "Reconciliation", issue 12 point 4).

One pass (`await Reconciler(om).reconcile()` → `ReconcileReport`):

1. **Orders and executions.** The `OrderManager` (still the only writer of order state) reads the
   broker's mass status — open and completed orders, executions since the *persistent checkpoint*
   (table `reconcile_checkpoints`, minus `overlap`; fills are unique by execution identity, so the
   overlap applies nothing twice), positions, account — applies every missing fill once, resolves
   UNKNOWN orders by asking the broker by id (never by resending), and sends only what was provably
   never sent.
2. **Lost orders.** One of Joe's sent orders that the broker does not know is asked for again on
   each pass; after `max_checks` passes in a row (counted in the store, so restarts count too) it
   becomes `OrderState.LOST`: terminal, alerted, audited, never resent. A broker report that later
   shows it moves it on (broker-truth edge).
3. **External.** Working orders, executions and positions Joe did not place (no Joe client order id,
   and not linked by broker id to one of Joe's orders) are recorded (`reconcile_items`), alerted
   once and never touched.
4. **Protection.** The `OrderManager` checks the protection invariant of every signal it rebuilt;
   each raised `UnprotectedPosition` is listed as a finding (the safety layer acts on it).
5. **Positions.** Per instrument: broker net == Joe's net filled + Joe's outside changes (the
   owner's executions that closed part of Joe's positions, `joe.execution.outside`) + the external
   quantity already recorded + external executions seen in this pass. An instrument on which Joe
   holds nothing and has no open order is adopted whole as external. Anything else is a mismatch
   Joe cannot explain.
6. **Verdict.** `explained=False` when a mismatch is unexplained or an acknowledged order was lost;
   with a `TradingStateStore` the state is escalated to HALTED (new entries stop; exits, cancels and
   the broker-side stops stay). Never flattens. The checkpoint moves to the broker's read time.

Findings carry what to do. Quantities: signed units for positions (> 0 long), unsigned for orders.
Errors: a failed broker read propagates (`BrokerError`); the checkpoint then stays where it was.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING

from joe.core.models import AccountInfo
from joe.core.order import Order, OrderState
from joe.core.reports import MassStatus, OrderStatusReport, VenueOrderStatus
from joe.execution.events import AlertKind

if TYPE_CHECKING:
    from joe.execution.order_manager import OrderManager
    from joe.safety.trading_state import TradingStateStore

ZERO = Decimal(0)
_LIVE_VENUE = (
    VenueOrderStatus.WORKING,
    VenueOrderStatus.PENDING_SUBMIT,
    VenueOrderStatus.PENDING_CANCEL,
    VenueOrderStatus.INACTIVE,
)
_NON_TERMINAL = {s for s in OrderState if not s.is_terminal}
_ACKED = (OrderState.ACCEPTED, OrderState.PARTIALLY_FILLED, OrderState.CANCEL_PENDING)


class FindingKind(StrEnum):
    EXTERNAL_ORDER = "external_order"  # a working order Joe did not place: recorded, never touched
    EXTERNAL_FILL = "external_fill"  # an execution of an order Joe did not place
    EXTERNAL_POSITION = "external_position"  # a position (part) Joe did not open: recorded, never touched
    ORDER_MISSING = "order_missing"  # a sent order the broker does not know (yet): asked again next pass
    ORDER_LOST = "order_lost"  # missing for `max_checks` passes: LOST, never resent
    POSITION_MISMATCH = "position_mismatch"  # broker and Joe disagree and nothing explains it
    UNPROTECTED = "unprotected"  # Joe's open position whose working stops do not cover it (raised)


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing the pass found. `broker_qty` / `joe_qty`: signed net position for position kinds,
    unsigned order size (remaining) for order kinds, None when not applicable. `action`: what Joe did
    and what a human should do. `explained`: False only for what halts new entries."""

    kind: FindingKind
    instrument: str
    client_order_id: str | None
    broker_order_id: str | None
    broker_qty: Decimal | None
    joe_qty: Decimal | None
    action: str
    explained: bool = True


@dataclass(frozen=True, slots=True)
class ReconcileReport:
    """The outcome of one pass. `applied_fills`: fill ids applied by this pass (each once across
    passes and restarts); `adopted`: broker ids newly recorded as external; `lost`: client order ids
    moved to LOST; `since`: executions were read from here; `ts`: the broker's read time (the new
    checkpoint); `halted`: this pass moved the trading state to HALTED."""

    explained: bool
    findings: tuple[Finding, ...]
    applied_fills: tuple[str, ...]
    adopted: tuple[str, ...]
    lost: tuple[str, ...]
    ts: datetime
    since: datetime | None
    account: AccountInfo | None = None
    halted: bool = False

    def summary(self) -> str:
        bad = [f for f in self.findings if not f.explained]
        head = "explained" if self.explained else f"{len(bad)} unexplained"
        return (
            f"{head}; {len(self.applied_fills)} fills applied, {len(self.adopted)} adopted as external, "
            f"{len(self.lost)} lost"
            + "".join(f"; {f.kind} {f.instrument} broker {f.broker_qty} Joe {f.joe_qty}" for f in bad)
        )


class Reconciler:
    """Reconciles one `OrderManager`'s account with its broker (see the module docstring).

    `trading_state`: escalated to HALTED on an unexplained pass (None: the caller acts on the
    report). `max_checks`: passes in a row an order may be missing at the broker before it is LOST.
    `overlap`: executions are re-read from this long before the checkpoint (clock skew, late rows).
    """

    def __init__(
        self,
        om: OrderManager,
        *,
        trading_state: TradingStateStore | None = None,
        max_checks: int = 3,
        overlap: timedelta = timedelta(minutes=5),
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        if max_checks < 1:
            raise ValueError(f"max_checks must be >= 1, got {max_checks}")
        self.om = om
        self.store = om.store
        self.broker = om.broker
        self.mode = om.mode
        self.trading_state = trading_state
        self.max_checks = max_checks
        self.overlap = overlap
        self.clock = clock or om.clock
        self.last: ReconcileReport | None = None

    async def start(self) -> ReconcileReport:
        """The startup pass, then the `OrderManager` opens to intents (it does not reconcile again).
        A failed pass raises and the manager stays closed."""
        report = await self.reconcile()
        await self.om.start(reconcile=False)
        return report

    async def reconcile(self) -> ReconcileReport:
        """One pass (see the module docstring). Raises `BrokerError` if the broker cannot be read."""
        checkpoint = self.store.reconcile_checkpoint(self.broker, self.mode)  # the broker's clock
        joes_clock = checkpoint is None
        if checkpoint is None:  # never reconciled: from the oldest order still open (None: everything)
            live = self.store.orders(state=_NON_TERMINAL, mode=self.mode, broker=self.broker)
            checkpoint = min((o.created_at for o in live), default=None)  # Joe's clock
        since = checkpoint - self.overlap if checkpoint is not None else None
        done = await self.om.reconcile(since, joes_clock=joes_clock)
        mass = done.mass
        findings: list[Finding] = []
        lost = await self._missing(done.missing, findings)
        orders = self.store.orders(mode=self.mode, broker=self.broker)
        mine = {o.client_order_id: o for o in orders}
        boids = {o.broker_order_id for o in orders if o.broker_order_id}
        adopted = self._external_orders(mass, mine, boids, findings)
        new_fills, fill_ids = self._external_fills(mass, mine, boids, findings)
        adopted += fill_ids
        adopted += self._positions(mass, orders, new_fills, findings)
        for sid, ev in sorted(self.om.unprotected_now.items()):
            findings.append(Finding(
                FindingKind.UNPROTECTED, ev.symbol, ",".join(ev.stop_client_order_ids) or None, None, None,
                ev.position,
                f"signal {sid}: {ev.reason}; reported to the safety layer (re-place the stop or reduce); "
                "never flattened here",
            ))  # fmt: skip
        explained = all(f.explained for f in findings)
        report = ReconcileReport(
            explained, tuple(findings), done.applied_fills, tuple(adopted), tuple(lost), mass.ts,
            since, mass.account,
        )  # fmt: skip
        for f in findings:
            if f.kind in (FindingKind.EXTERNAL_ORDER, FindingKind.EXTERNAL_POSITION) and (
                (f.broker_order_id or f.instrument) in adopted
            ):
                await self.om.journal.alert(AlertKind.EXTERNAL, _describe(f))
        if not explained:
            report = await self._halt(report)
        self.om.journal.record(
            "reconcile.report",
            {
                "explained": report.explained,
                "summary": report.summary(),
                "applied_fills": list(report.applied_fills),
                "adopted": list(report.adopted),
                "lost": list(report.lost),
                "since": since.isoformat() if since else None,
                "findings": [_payload(f) for f in report.findings],
            },
        )
        self.store.set_reconcile_checkpoint(self.broker, self.mode, mass.ts)
        self.last = report
        return report

    # ------------------------------------------------------------------ steps
    async def _missing(self, missing: Iterable[Order], findings: list[Finding]) -> list[str]:
        lost: list[str] = []
        gone = {o.client_order_id for o in missing}
        for item in self.store.reconcile_items(self.broker, self.mode, "miss"):
            if item.ref not in gone:  # found (or settled) since: the count starts again
                self.store.drop_reconcile_item(self.broker, self.mode, "miss", item.ref)
        for o in missing:
            item = self.store.put_reconcile_item(
                self.broker, self.mode, "miss", o.client_order_id, symbol=o.intent.symbol,
                quantity=o.remaining, detail={"state": o.state.value},
            )  # fmt: skip
            acked = o.state in _ACKED or o.broker_order_id is not None
            if item.count < self.max_checks:
                findings.append(Finding(
                    FindingKind.ORDER_MISSING, o.intent.symbol, o.client_order_id, o.broker_order_id,
                    None, o.remaining,
                    f"the broker does not know this {o.state} order (check {item.count} of "
                    f"{self.max_checks}); asked again next pass, never resent",
                ))  # fmt: skip
                continue
            reason = f"not at the broker after {item.count} reconciliation checks"
            await self.om.mark_lost(o, reason)
            self.store.drop_reconcile_item(self.broker, self.mode, "miss", o.client_order_id)
            lost.append(o.client_order_id)
            findings.append(Finding(
                FindingKind.ORDER_LOST, o.intent.symbol, o.client_order_id, o.broker_order_id, None,
                o.remaining,
                "LOST (never resent). " + (
                    "It was acknowledged by the broker: check its order history and the account; "
                    "`joe resume` once understood" if acked
                    else "It was never acknowledged: it most likely never reached the broker"
                ),
                explained=not acked,
            ))  # fmt: skip
        return lost

    def _external_orders(
        self, mass: MassStatus, mine: dict[str, Order], boids: set[str], findings: list[Finding]
    ) -> list[str]:
        adopted: list[str] = []
        seen: set[str] = set()
        for r in mass.orders:
            if r.status not in _LIVE_VENUE or _is_joes(r.client_order_id, r.broker_order_id, mine, boids):
                continue
            if r.parent_broker_order_id and _linked(r.parent_broker_order_id, boids):
                continue  # a leg of one of Joe's orders (attached stop/target), not someone else's
            ref = r.broker_order_id or f"{r.symbol}:{r.side}:{r.quantity}"
            seen.add(ref)
            old = self.store.reconcile_item(self.broker, self.mode, "external_order", ref)
            self.store.put_reconcile_item(
                self.broker, self.mode, "external_order", ref, symbol=r.symbol, quantity=r.quantity,
                detail=_order_detail(r),
            )  # fmt: skip
            if old is None:
                adopted.append(ref)
            findings.append(Finding(
                FindingKind.EXTERNAL_ORDER, r.symbol, r.client_order_id or None, r.broker_order_id,
                r.quantity, None, "recorded as external: Joe never modifies or cancels it",
            ))  # fmt: skip
        for item in self.store.reconcile_items(self.broker, self.mode, "external_order"):
            if item.ref not in seen:  # no longer working at the broker
                self.store.drop_reconcile_item(self.broker, self.mode, "external_order", item.ref)
        return adopted

    def _external_fills(
        self, mass: MassStatus, mine: dict[str, Order], boids: set[str], findings: list[Finding]
    ) -> tuple[dict[str, Decimal], list[str]]:
        new: dict[str, Decimal] = {}
        ids: list[str] = []
        for fr in mass.fills:
            f = fr.fill
            if _is_joes(f.client_order_id, f.broker_order_id, mine, boids):
                continue
            if self.store.reconcile_item(self.broker, self.mode, "external_fill", f.fill_id) is not None:
                continue
            # The part booked as an outside change of one of Joe's signals is Joe's, not external.
            signed = f.quantity * f.side.sign - self.om.outside.of_fill(f.fill_id)
            if signed == 0:
                continue
            self.store.put_reconcile_item(
                self.broker, self.mode, "external_fill", f.fill_id, symbol=f.symbol, quantity=signed,
                detail={"price": str(f.price), "ts": f.ts.isoformat(), "broker_order_id": f.broker_order_id},
            )  # fmt: skip
            new[f.symbol] = new.get(f.symbol, ZERO) + signed
            ids.append(f.fill_id)
            findings.append(Finding(
                FindingKind.EXTERNAL_FILL, f.symbol, None, f.broker_order_id, signed, None,
                "an execution Joe did not place: recorded, counted as external",
            ))  # fmt: skip
        return new, ids

    def _positions(
        self,
        mass: MassStatus,
        orders: list[Order],
        new_fills: dict[str, Decimal],
        findings: list[Finding],
    ) -> list[str]:
        broker: dict[str, Decimal] = {}
        for p in mass.positions:
            broker[p.symbol] = broker.get(p.symbol, ZERO) + p.quantity
        joe = self.store.net_filled(self.broker, self.mode)
        for sym, q in self.om.outside.by_symbol().items():  # the owner's closes of Joe's positions
            joe[sym] = joe.get(sym, ZERO) + q
        recorded = {
            i.ref: i.quantity for i in self.store.reconcile_items(self.broker, self.mode, "external_position")
        }
        busy = {o.intent.symbol for o in orders if not o.state.is_terminal}
        adopted: list[str] = []
        for sym in sorted(set(broker) | set(joe) | set(recorded)):
            b, j, prev = broker.get(sym, ZERO), joe.get(sym, ZERO), recorded.get(sym, ZERO)
            delta = b - j
            if delta == prev + new_fills.get(sym, ZERO) or (j == 0 and sym not in busy):
                if delta == 0:
                    if sym in recorded:
                        self.store.drop_reconcile_item(self.broker, self.mode, "external_position", sym)
                    continue
                if delta != prev or sym not in recorded:
                    self.store.put_reconcile_item(
                        self.broker, self.mode, "external_position", sym, symbol=sym, quantity=delta,
                        detail={"broker": str(b), "joe": str(j)},
                    )  # fmt: skip
                if sym not in recorded:
                    adopted.append(sym)
                findings.append(Finding(
                    FindingKind.EXTERNAL_POSITION, sym, None, None, b, j,
                    f"{delta} recorded as external (not Joe's): never touched, not protected by Joe",
                ))  # fmt: skip
                continue
            findings.append(Finding(
                FindingKind.POSITION_MISMATCH, sym, None, None, b, j,
                f"the broker holds {b}, Joe's fills say {j} (+ {prev} external known): new entries "
                "halted; nothing is flattened. Check the broker's executions and Joe's orders, then "
                "`joe resume` with a reason",
                explained=False,
            ))  # fmt: skip
        return adopted

    async def _halt(self, report: ReconcileReport) -> ReconcileReport:
        await self.om.journal.alert(AlertKind.MISMATCH, f"reconciliation: {report.summary()}")
        if self.trading_state is None:
            return report
        from joe.safety.trading_state import TradingState

        _, changed = self.trading_state.escalate(
            TradingState.HALTED, by=f"reconciler:{self.broker}", reason=report.summary()
        )
        return ReconcileReport(
            report.explained, report.findings, report.applied_fills, report.adopted, report.lost,
            report.ts, report.since, report.account, halted=changed,
        )  # fmt: skip


def _linked(boid: str, joe_boids: set[str]) -> bool:
    """Whether a broker id belongs to one of Joe's orders: itself, or a leg/close id derived from
    it (Capital.com `<dealId>:SL` / `<dealId>:TP` / `p_<dealId>`)."""
    if boid in joe_boids:
        return True
    base = boid.rsplit(":", 1)[0] if boid.endswith((":SL", ":TP")) else boid
    if base.startswith("p_"):
        base = base[2:]
    return base in joe_boids


def _is_joes(coid: str, boid: str | None, mine: dict[str, Order], boids: set[str]) -> bool:
    return (bool(coid) and coid in mine) or (boid is not None and _linked(boid, boids))


def _order_detail(r: OrderStatusReport) -> dict[str, str | None]:
    return {
        "side": r.side.value,
        "status": r.status.value,
        "order_type": r.order_type.value if r.order_type else None,
        "limit_price": None if r.limit_price is None else str(r.limit_price),
        "stop_price": None if r.stop_price is None else str(r.stop_price),
    }


def _describe(f: Finding) -> str:
    what = f"order {f.broker_order_id}" if f.kind is FindingKind.EXTERNAL_ORDER else "position"
    return f"external {what} on {f.instrument} (broker {f.broker_qty}): {f.action}"


def _payload(f: Finding) -> dict[str, str | bool | None]:
    return {
        "kind": f.kind.value,
        "instrument": f.instrument,
        "client_order_id": f.client_order_id,
        "broker_order_id": f.broker_order_id,
        "broker_qty": None if f.broker_qty is None else str(f.broker_qty),
        "joe_qty": None if f.joe_qty is None else str(f.joe_qty),
        "action": f.action,
        "explained": f.explained,
    }
