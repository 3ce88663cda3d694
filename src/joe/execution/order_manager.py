"""`OrderManager`: the only place that changes an `Order`'s state (DESIGN.md "Order truth").

- Write-ahead: an intent and its deterministic `client_order_id` are committed to the store (NEW:
  provably not sent), then SUBMITTING right before `ExecutionClient.submit` (the send may have
  happened). Before any send the store AND the broker (`order_status`) are checked; an order the
  broker has is adopted, never sent again; "the broker could not be asked" is never "absent". Only
  NEW is ever (re)sent; SUBMITTING/UNKNOWN are asked for (`resolve_in_doubt`), never resent.
- Observations (`ExecutionClient.observations()`) are applied through the pure rules in
  `reconcile_rules`; anything ambiguous is settled by asking the broker, never by resending.
- On `start` every non-terminal order is rebuilt from the store and reconciled with the broker
  (`mass_status`, `joe.execution.reconcile_pass`) before any intent is accepted; intents are
  refused while a reconciliation runs.
- A fill is a fact: validated (`joe.core.order.validate_fill`), unique by execution identity, a
  higher revision replaces, commissions before or after end up on it; stored with an audit outbox.
- Exits are reduce-only (capped at the broker's live position) and replace the protective orders;
  a rejected exit can be retried as a new attempt. Bracket children follow their parent's size, and
  an open position whose stop does not cover it is reported as `UnprotectedPosition`.

Concurrency: one asyncio loop. Every mutation of a cached `Order` and its save happen without an
`await` in between, so the cached copy and the store never diverge; the store's version column
refuses any other (stale) writer with `StaleOrderError`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from decimal import Decimal

from joe.brokers.base import (
    BrokerError,
    EntriesRefused,
    ExecutionClient,
    InvalidOrder,
    OrderOutcomeUnknown,
    SendFailed,
    SupportsPresendCheck,
)
from joe.core.clock import utcnow
from joe.core.events import AuditSink
from joe.core.models import OrderIntent, OrderLeg, OrderType
from joe.core.order import Order, OrderState
from joe.core.reports import (
    BrokerNotice,
    CommissionReport,
    FillReport,
    Observation,
    OrderStatusReport,
    PositionReport,
    VenueOrderStatus,
)
from joe.core.tasks import cancel_and_wait
from joe.execution.book import OrderBook
from joe.execution.bracket_follower import BracketFollower
from joe.execution.broker_queries import BrokerQueries
from joe.execution.entry_gate import EntryGate, refuse_if_closed
from joe.execution.events import AlertKind, ExecutionAlert, UnprotectedPosition
from joe.execution.exits import run_exit
from joe.execution.fill_intake import FillIntake
from joe.execution.increments import check_intent
from joe.execution.journal import (
    AlertHandler,
    ExecutionJournal,
    OrderEventHandler,
    RestoredHandler,
    UnprotectedHandler,
    intent_payload,
)
from joe.execution.outside import OutsideChanges, OutsideLedger
from joe.execution.plan_apply import PlanApply
from joe.execution.reconcile_pass import ReconcilePass
from joe.execution.reconcile_rules import plan_notice, plan_status
from joe.execution.target_refit import TargetRefit
from joe.store import Store

log = logging.getLogger(__name__)

_S = OrderState
_WORKING = (_S.ACCEPTED, _S.PARTIALLY_FILLED)
_CHILD_LEGS = (OrderLeg.STOP_LOSS, OrderLeg.TAKE_PROFIT)
STOP_WAIT_S = 1.0  # seconds `stop` waits for background tasks to end after cancelling them


class OrderManager(
    ReconcilePass, FillIntake, BrokerQueries, OutsideChanges, BracketFollower, TargetRefit, PlanApply
):
    """Owns every order at one broker. See the module docstring for the rules it keeps.

    `mode` is the store/audit trading mode ("live" or "shadow"); `on_unprotected` / `on_alert` /
    `on_restored` are called (sync or async) for every `UnprotectedPosition` / `ExecutionAlert` /
    `ProtectionRestored` (the clear event of a raised unprotected position), which are also kept in
    `unprotected` (and `unprotected_now` while raised) / `alerts` / `journal.restored` and audited.
    `confirm_timeout` (seconds) bounds how long an exit waits
    for the broker to confirm the cancels of the protective orders it replaces. `in_doubt_window`
    (seconds; asked every `in_doubt_interval`) is how long a reconciliation keeps asking the broker
    for an order whose send may have happened before it is left UNKNOWN (a request still in flight
    when its process died can be processed late); it is never resent.
    """

    def __init__(
        self,
        client: ExecutionClient,
        store: Store,
        audit: AuditSink,
        *,
        mode: str = "live",
        on_unprotected: UnprotectedHandler | None = None,
        on_alert: AlertHandler | None = None,
        on_restored: RestoredHandler | None = None,
        on_event: OrderEventHandler | None = None,
        confirm_timeout: float = 5.0,
        in_doubt_window: float = 10.0,
        in_doubt_interval: float = 0.5,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.client = client
        self.store = store
        self.mode = mode
        self.broker = client.name
        self.confirm_timeout = confirm_timeout
        self.in_doubt_window = in_doubt_window
        self.in_doubt_interval = in_doubt_interval
        self.clock = clock
        self.book = OrderBook(store, self.broker, mode)
        self.outside = OutsideLedger(store, self.broker, mode)
        self.journal = ExecutionJournal(
            audit, self.broker, mode, clock, on_alert, on_unprotected, on_restored
        )
        self.journal.on_event = on_event
        self._ready = False
        self._stopping = False  # `stop` began: no new background task (trims, refits)
        self._reconciling = False
        self._sending: set[str] = set()
        self._exiting: set[str] = set()
        self._following: set[str] = set()  # signals whose children are being resized to the parent
        self._last_protection: dict[str, tuple[Decimal, Decimal]] = {}
        self._resize_asked: dict[str, Decimal] = {}
        self._over_asked: dict[str, tuple[Decimal, Decimal]] = {}
        self._over_asking: set[str] = set()
        self._frozen: set[str] = set()  # signals whose children must not follow (unconfirmed overfill)
        self._estimating_off: set[str] = set()  # `FillIntake._book_unseen_fills` paused for these orders
        self._pass_fills: set[str] = set()  # orders whose executions the running reconciliation applies
        self._deferred_estimates: dict[str, OrderStatusReport] = {}  # `ReconcilePass.reconcile`
        self._refit: set[str] = set()
        self._position_seen: dict[str, Decimal] = {}
        self._levels_asked: dict[str, set[tuple[str, Decimal]]] = {}  # price levels Joe asked, by order
        self._outside_lock = asyncio.Lock()
        self._trims: dict[str, asyncio.Task[None]] = {}  # legs outliving their position (`_trim_guards`)
        self._inactive_asked: set[str] = set()  # legs cancelled once for being Inactive (`_inactive_leg`)
        self._refits: dict[str, tuple[Decimal, int]] = {}  # targets cancelled to be replaced (`TargetRefit`)
        self._refit_refused: set[str] = set()
        self._refit_tasks: dict[str, asyncio.Task[None]] = {}
        self._refit_placing: set[str] = set()
        self.changed = asyncio.Event()
        self._consumer: asyncio.Task[None] | None = None
        self._applied: list[str] | None = None  # fill ids applied during a reconciliation pass
        self.entry_gate: EntryGate | None = None  # asked right before an entry is sent (`entry_gate`)

    # ------------------------------------------------------------------ lifecycle
    @property
    def accepting(self) -> bool:
        """True when new intents are accepted (started, and no reconciliation running)."""
        return self._ready and not self._reconciling

    async def start(self, *, consume: bool = True, reconcile: bool = True) -> None:
        """Rebuild and reconcile every non-terminal order (unless `reconcile` is False: the caller's
        `Reconciler` just did), then accept intents and (with `consume`) apply the client's
        observation stream in a background task. A failed reconciliation raises and the manager
        stays closed to intents."""
        self._stopping = False  # started again after a stop
        if reconcile:
            await self.reconcile()
        self._ready = True
        if consume and self._consumer is None:
            self._consumer = asyncio.create_task(self._consume(), name=f"order-manager-{self.broker}")

    async def stop(self) -> None:
        """Close to intents and end the background tasks (the leg trims, target refits, the observation
        consumer), each awaited to its end: none may touch the store after `stop` returns (the caller
        closes it next)."""
        self._ready = False
        self._stopping = True  # no new trim or refit from here on (the consumer runs while we wait)
        self.book.flush_audited()
        task, self._consumer = self._consumer, None
        try:
            # A trim stuck past STOP_WAIT_S is reported, not waited for forever.
            if stuck := await cancel_and_wait(self._trims.values(), STOP_WAIT_S):
                log.error("%d protective-leg trim(s) still running after stop: %s", len(stuck), stuck)
            await self.stop_refits()
        finally:
            if task is not None:  # asked at once even when this stop is itself cancelled (a timeout)
                task.cancel()
        # Cancel until it ends: a client call in flight may swallow one cancellation and go on.
        while task is not None and not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=0.1)
        if task is not None and not task.cancelled() and task.exception() is not None:
            log.error("observation consumer ended with %r", task.exception())
        # Whatever started while the consumer ran on (none should: `_stopping`), ended too.
        rest = [*self._trims.values(), *self._refit_tasks.values()]
        if stuck := await cancel_and_wait(rest, STOP_WAIT_S):
            log.error("%d background task(s) still running after stop: %s", len(stuck), stuck)
        self.book.flush_audited()  # fills the consumer applied while stop waited

    async def _consume(self) -> None:
        async for obs in self.client.observations():
            try:
                await self._fresh(self.process, obs)
            except Exception as e:  # one bad observation must not stop the stream; it is alerted
                log.exception("observation %r failed", obs)
                await self.journal.alert(AlertKind.UNRESOLVED, f"applying {type(obs).__name__} failed: {e}")

    # ------------------------------------------------------------------ intents
    async def submit(self, intents: Sequence[OrderIntent]) -> list[Order]:
        """Place one order or one bracket (entry first, then its stop and target, linked to it).

        Idempotent by `client_order_id`: an intent already stored is never sent again; one the
        broker has is adopted. Raises `EntriesRefused` before start or during a reconciliation, or when
        `entry_gate` refuses an entry at the last moment (stored REJECTED, `joe.execution.entry_gate`),
        `InvalidOrder` for a non-conforming intent (nothing stored or sent), `SendFailed` (order
        REJECTED, provably not at the broker) and `OrderOutcomeUnknown` (order UNKNOWN, queried
        and not settled; never resent).
        """
        if not self.accepting:
            raise EntriesRefused(
                f"{self.broker}: order manager is not accepting intents (starting or reconciling)"
            )
        if not intents:
            return []
        for intent in intents:
            await self.check_rules(intent)
        existing = [self.book.get(i.client_order_id) for i in intents]
        if any(o is not None for o in existing):
            return await self._resume([o for o in existing if o is not None])
        self._check_in_doubt(intents)
        parent = intents[0].client_order_id if len(intents) > 1 else None
        orders = [
            Order(i, parent_client_order_id=parent if i.leg in _CHILD_LEGS else None, created_at=self.clock())
            for i in intents
        ]
        ids = [o.client_order_id for o in orders]
        self._sending.update(ids)  # a concurrent submit of the same intent waits on the broker's word
        for o in orders:  # what that submit finds (`book.get`) while the attempt is being audited
            self.book.orders[o.client_order_id] = o
        stored = False
        try:
            # Audited first, then stored (as every move of Joe's own: `move_audited`): a crash right
            # after the store's commit finds `order.attempt` written; a crash between leaves a record
            # of an attempt with nothing stored and nothing sent.
            audited = True
            for o in orders:
                audited &= await self.journal.order_event("order.attempt", intent_payload(o.intent), o)
            with self.store.atomic():
                for o in orders:
                    # Committed NEW: the intent, provably not sent. `send` commits SUBMITTING (the
                    # send may happen from then on) right before the broker call.
                    self.book.save(o)
            stored = True
            for o in orders:
                self.book.orders[o.client_order_id] = o
            # The state may have moved while it was written; an entry not audited is never sent.
            await refuse_if_closed(self, orders, audited=audited)
            # The broker may already hold this intent (placed by another process, or from another
            # store): check before the first send (one targeted query where the adapter has one).
            if await self._at_broker(orders[0]):
                for o in orders[1:]:
                    await self.ask(o)
                adopted = {"reason": "at the broker already"}
                await self.journal.order_event("order.adopted", adopted, orders[0])
                return orders
            return await self.send(orders)
        finally:
            for o in orders if not stored else ():  # no copy of an unstored order may be found later
                if self.book.orders.get(o.client_order_id) is o:
                    del self.book.orders[o.client_order_id]
            self._sending.difference_update(ids)

    async def _at_broker(self, o: Order) -> bool:
        if isinstance(self.client, SupportsPresendCheck):
            try:
                if not await self.client.presend_check(o.client_order_id):
                    return False
            except BrokerError:
                pass  # cannot tell from the targeted query: ask the full way
        found = await self.lookup(o)
        if found is None:
            # Not sent, but the broker cannot say whether another process placed this id: sending
            # could make it two. Refused (fail closed), provably not sent by Joe.
            why = "not sent: the broker could not be asked whether it already holds this id"
            group = [o, *self.book.children(o)]
            for g in group:
                await self.journal.move_audited(
                    self.book, g, _S.REJECTED, why, "order.rejected", {"reason": why}
                )
            raise SendFailed(f"order {o.client_order_id}: {why}")
        return found

    async def _resume(self, orders: list[Order]) -> list[Order]:
        for o in orders:
            if o.client_order_id in self._sending or o.state not in (_S.NEW, _S.SUBMITTING, _S.UNKNOWN):
                continue
            found = await self.lookup(o)
            if found:
                continue
            if found is None or not self.book.never_sent(o):
                raise OrderOutcomeUnknown(
                    f"order {o.client_order_id} is {o.state}: its send may have happened and the broker "
                    f"{'could not be asked' if found is None else 'has no such order yet'}; it is never "
                    "resent, reconciliation keeps asking"
                )
            if o.parent_client_order_id is None:  # written ahead by a process that died before sending
                group = [o, *(c for c in self.book.children(o) if self.book.never_sent(c))]
                resend = {"reason": "written ahead, never sent"}
                audited = await self.journal.order_event("order.resend", resend, o)
                await refuse_if_closed(self, group, audited=audited)  # it may have met a full disk
                await self.send(group)
        return orders

    async def send(self, orders: list[Order]) -> list[Order]:
        ids = [o.client_order_id for o in orders]
        # Checked with no await before the broker call: a protective leg sent alone may not outlive,
        # outgrow or race the position it protects (an exit starting later sees it SUBMITTING).
        overreach = self.leg_overreach([o for o in orders if o.state is _S.NEW])
        if overreach is not None and all(o.state is _S.NEW for o in orders):
            why = f"not sent: {overreach}"
            for o in orders:  # Joe's own refusal, not the broker's: no reject for the circuit breaker
                payload = {"to": _S.REJECTED.value, "reason": why}
                await self.journal.move_audited(self.book, o, _S.REJECTED, why, "order.not_sent", payload)
            await self._check_protection(orders[0].intent.signal_id)
            raise SendFailed(f"orders {ids}: {why}")
        mine = [i for i in ids if i not in self._sending]  # a caller may hold them already
        self._sending.update(mine)
        try:
            # The second write-ahead, durable before the broker call: from here the send may have
            # happened, so a restart asks the broker and never resends (`resolve_in_doubt`).
            with self.store.atomic():
                for o in orders:
                    if o.state is _S.NEW:
                        o.transition(_S.SUBMITTING, "write-ahead: sending", ts=self.clock())
                        self.book.save(o)
            acks = await self.client.submit([o.intent for o in orders])
        except (SendFailed, InvalidOrder) as e:
            for o in orders:
                why = f"not sent: {e}"
                await self.journal.move_audited(
                    self.book, o, _S.REJECTED, why, "order.rejected", {"reason": why}
                )
            raise
        except Exception as e:  # OrderOutcomeUnknown, a dropped connection, anything: it may be there
            for o in orders:
                await self.journal.move_audited(
                    self.book, o, _S.UNKNOWN, f"outcome unknown: {e}",
                    "order.unknown", {"reason": str(e), "timeout": _timed_out(e)},
                )  # fmt: skip
            settled = [await self.lookup(o) for o in orders]
            for o, found in zip(orders, settled, strict=True):
                if not found:  # asked, and the broker could not say: an unresolved outcome
                    await self.journal.order_event(
                        "order.unresolved", {"reason": f"outcome unknown after asking: {e}"}, o
                    )
            if not all(settled):
                if isinstance(e, OrderOutcomeUnknown):
                    raise
                raise OrderOutcomeUnknown(f"orders {ids}: {e}") from e
            return orders
        finally:
            self._sending.difference_update(mine)
        by_id = {a.client_order_id: a for a in acks}
        for o in orders:
            ack = by_id.get(o.client_order_id)
            if ack is not None and ack.broker_order_id and o.broker_order_id != ack.broker_order_id:
                o.broker_order_id = ack.broker_order_id
                # Persisted with the broker's first report on the order (it carries the id too): one
                # commit fewer per order. A crash before it is the "killed after send" case: the
                # restart finds the order at the broker by Joe's id (tested by the SIGKILL tests).
                if o.state is not _S.SUBMITTING:
                    self.book.save(o)
            await self.journal.order_event("order.submitted", {"broker_order_id": o.broker_order_id}, o)
        return orders

    async def check_rules(self, intent: OrderIntent) -> None:
        try:
            check_intent(intent, await self.client.instrument_rules(intent.symbol))
        except InvalidOrder as e:
            self.journal.record("order.invalid", {"reason": str(e)}, client_order_id=intent.client_order_id)
            raise

    async def modify(
        self,
        coid: str,
        *,
        quantity: Decimal | None = None,
        limit_price: Decimal | None = None,
        stop_price: Decimal | None = None,
    ) -> None:
        """Ask the broker to change a working order. Joe's copy changes only when a status report
        shows the new values; a refusal changes nothing. A bracket parent's children are not asked
        here: they follow the parent's size once the broker CONFIRMS it (`_follow_parent`), so a
        refused parent modify leaves them unchanged and they never exceed the confirmed parent."""
        o = self.book.require(coid)
        if o.state not in (*_WORKING, _S.SUBMITTING):
            raise InvalidOrder(f"order {coid} is {o.state}; only a working order can be modified")
        if quantity is not None and quantity.is_finite() and quantity < o.filled_quantity:
            raise InvalidOrder(  # a size is the order's total: below what filled, no broker can take it
                f"modify of {coid}: quantity {quantity} is below the {o.filled_quantity} already filled "
                "(the size is the order's total, fills included); cancel the rest instead"
            )
        changes = {
            k: v
            for k, v in (("quantity", quantity), ("limit_price", limit_price), ("stop_price", stop_price))
            if v is not None
        }
        try:
            changed = replace(o.intent, **changes)  # type: ignore[arg-type]
        except ValueError as e:  # NaN, Infinity, a size <= 0: named by the intent's own check
            raise InvalidOrder(f"modify of {coid}: {e}") from None
        check_intent(changed, await self.client.instrument_rules(o.intent.symbol))
        await self.journal.order_event("order.modify_requested", {k: str(v) for k, v in changes.items()}, o)
        asked = self._levels_asked.setdefault(coid, set())
        asked.update((k, v) for k, v in changes.items() if k != "quantity")
        await self.client.modify(
            self.book.ref(o), quantity=quantity, limit_price=limit_price, stop_price=stop_price
        )

    async def cancel(self, coid: str) -> None:
        """Ask the broker to cancel; the order is CANCEL_PENDING until the broker confirms (a refusal
        moves it back)."""
        o = self.book.require(coid)
        if o.state not in _WORKING:
            return
        before = o.state
        # Audited, then stored (write-ahead, as a submit): the record names the state it stores.
        asked = {"from": before.value, "to": _S.CANCEL_PENDING.value}
        await self.journal.move_audited(
            self.book, o, _S.CANCEL_PENDING, "cancel requested", "order.cancel_requested", asked
        )
        try:
            await self.client.cancel(self.book.ref(o))
        except SendFailed as e:
            back = {"from": _S.CANCEL_PENDING.value, "to": before.value, "reason": str(e)}
            await self.journal.move_audited(
                self.book, o, before, f"cancel not sent: {e}", "order.cancel_not_sent", back
            )
            raise

    async def exit(
        self,
        signal_id: str,
        *,
        quantity: Decimal | None = None,
        order_type: OrderType = OrderType.MARKET,
        limit_price: Decimal | None = None,
    ) -> Order | None:
        """Close (part of) the position one signal opened, reduce-only.

        The size is capped at Joe's open position and at the broker's live position in the entry's
        direction, asked from the broker (rounded down to the size step); None when there is nothing
        to exit. The protective legs are sized from the same broker position, not from Joe's fills
        (the owner may have traded the instrument elsewhere): cancelled — confirmed by the broker
        before the exit is sent — when nothing stays open, else shrunk to what stays (never grown;
        after an exit they no longer follow the parent up), so no leg is larger than the position
        and none can reverse it. The position is read again right before the send and the legs shrunk
        again if it fell meanwhile. At the end one targeted pass (`settle_signal`) makes Joe's copies
        of the signal's orders and fills equal the broker's. An exit already working is returned,
        not duplicated; an exit that was rejected or cancelled can be retried (attempt n+1, a new
        deterministic id). Exits are allowed while entries are refused, except during a
        reconciliation (raises `EntriesRefused`). Raises `BrokerError` when a leg's cancel is not
        confirmed in `confirm_timeout` (the exit is then not sent: retry it).
        """
        return await run_exit(self, signal_id, quantity, order_type, limit_price)

    # ------------------------------------------------------------------ observations
    async def process(self, obs: Observation) -> None:
        """Apply one broker observation (the consumer task calls this for every one)."""
        if isinstance(obs, OrderStatusReport):
            await self._on_status(obs)
        elif isinstance(obs, FillReport):
            await self._on_fill(obs)
        elif isinstance(obs, CommissionReport):
            await self._on_commission(obs)
        elif isinstance(obs, BrokerNotice):
            await self._on_notice(obs)
        elif isinstance(obs, PositionReport):
            await self.on_position(obs)
        self.changed.set()

    async def _on_status(self, r: OrderStatusReport) -> None:
        o = self.book.get(r.client_order_id) if r.client_order_id else None
        if o is None:
            self.journal.record(
                "order.external",
                {"status": r.status.value, "symbol": r.symbol, "quantity": str(r.quantity)},
                client_order_id=r.client_order_id or None,
                broker_order_id=r.broker_order_id,
            )
            return
        plan = plan_status(o, r)
        await self._apply(o, plan)
        if plan.to_state is _S.SUBMITTING:  # NEW -> SUBMITTING, then what the report says
            await self._apply(o, plan_status(o, r))
        # Executions read (not failed): what they lack is beyond the broker's history (an estimate).
        if plan.fetch_fills and await self._fetch_fills(o):
            await self._book_unseen_fills(o, r)
        if r.status is VenueOrderStatus.INACTIVE:
            await self._inactive_leg(o)
        await self._after_change(o)

    async def _on_notice(self, n: BrokerNotice) -> None:
        o = (
            self.book.get(n.client_order_id)
            if n.client_order_id
            else self.book.by_broker_id(n.broker_order_id)
        )
        payload = {"code": n.code, "message": n.message, "meaning": n.meaning.value, "request": n.request}
        if o is None:
            self.journal.record("broker.notice", payload, broker_order_id=n.broker_order_id)
            return
        await self.journal.order_event("order.notice", payload, o)
        await self._apply(o, plan_notice(o, n))
        await self._after_change(o)

    # ------------------------------------------------------------------ reading
    def order(self, coid: str) -> Order | None:
        """Joe's current copy of an order (cached, else from the store)."""
        return self.book.get(coid)

    @property
    def alerts(self) -> list[ExecutionAlert]:
        return self.journal.alerts

    @property
    def unprotected(self) -> list[UnprotectedPosition]:
        """Every `UnprotectedPosition` reported so far (history; see `unprotected_now`)."""
        return self.journal.unprotected

    @property
    def unprotected_now(self) -> dict[str, UnprotectedPosition]:
        """Signals whose protection is raised and not yet cleared by a `ProtectionRestored`."""
        return self.journal.unprotected_now


def _timed_out(e: BaseException) -> bool:
    """Whether a send failed by a timeout (the exception or what it was raised from)."""
    return isinstance(e, TimeoutError) or isinstance(e.__cause__ or e.__context__, TimeoutError)
