"""`TelegramControl`: what each Telegram command answers and does, independent of the transport.

Commands: ``/status /positions /orders /pnl /daily /report /mode /help`` (read-only) and ``/halt /reduce
/flatten /resume <reason>`` (mutating). A mutating command is not carried out at once: Joe answers with a
one-time code, and only ``/confirm <code>`` from the same chat *and the same person* (Telegram's
``from.id``) within `confirm_timeout_s` does it, through the same functions as `joe kill` / `joe resume`
(`joe.safety.operator`). In a group every member sees the code, so a confirmation from anyone else is
refused; with `allowed_users` (``TELEGRAM_USER_IDS``) only those people may ask or confirm a mutating
command at all. A command addressed to another bot (``/halt@OtherBot``) is not Joe's and is ignored
(review r16, defect 5); an ``@`` suffix is accepted only when it is Joe's own username. A chat that is
not on the allow-list gets no answer at all; its message is audited (``telegram.ignored``; a flood from
one chat is summarised by `AuditThrottle`). Every command of an allowed chat is audited
(``telegram.command``) with the chat id and its outcome. A reason is 5..500 characters (as the
dashboard's); three wrong codes cancel the pending action; answers are redacted like every other output.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from joe.audit.redaction import redact_text
from joe.audit.throttle import AuditThrottle
from joe.safety.kill_switch import KillLevel
from joe.safety.operator import MAX_REASON, MIN_REASON

if TYPE_CHECKING:
    from joe.runtime.bootstrap import Runtime
    from joe.safety.control import SafetyContext

MUTATING = ("halt", "reduce", "flatten", "resume")
READ_ONLY = ("status", "positions", "orders", "pnl", "daily", "report", "mode", "help")
MAX_WRONG_CODES = 3  # then the pending action is dropped: a code is not guessed by trying
HELP = (
    "/status — mode, trading state, today's PnL\n/positions — open positions and their stops\n"
    "/orders — working orders\n/pnl — today's PnL vs the daily loss limit\n/daily — equity per day (7 days)\n"
    "/report — the latest run\n/mode — the trading mode and why\n"
    "/halt <reason> — no new orders\n/reduce <reason> — exits only\n"
    "/flatten <reason> — halt and close everything\n"
    "/resume <reason> — back to ACTIVE\n/confirm <code> — confirm one of the four above"
)


@dataclass
class Pending:
    action: str
    reason: str
    code: str
    deadline: float
    wrong: int = 0


class TelegramControl:
    """Answers one chat message at a time (`handle`). `clock` is monotonic seconds (injectable)."""

    def __init__(
        self,
        rt: Runtime,
        ctx: SafetyContext,
        allowed_chats: set[int],
        *,
        confirm_timeout_s: float = 60.0,
        clock: Callable[[], float] | None = None,
        allowed_users: set[int] | None = None,
        bot_username: str | None = None,
    ) -> None:
        import time

        self.rt = rt
        self.ctx = ctx
        self.allowed = set(allowed_chats)
        # None: any member of an allowed chat may ask (and confirm their own request); a set: only these.
        self.allowed_users = set(allowed_users) if allowed_users else None
        self.bot_username = bot_username  # Joe's own @username (getMe); set by `build_application`
        self.confirm_timeout_s = confirm_timeout_s
        self.clock = clock or time.monotonic
        self.pending: dict[tuple[int, int], Pending] = {}  # (chat id, user id) -> the action asked
        self.ignored = AuditThrottle(monotonic=self.clock)  # a stranger's flood is summarised

    def audit(self, event: str, payload: dict[str, Any]) -> None:
        self.rt.audit.record(event, payload)

    async def handle(self, chat_id: int, text: str, user_id: int | None = None) -> str | None:
        """The answer to `text` from `user_id` in `chat_id` (a private chat's user is the chat: the
        default), or None when the chat is not allowed or the command is another bot's (no answer)."""
        user = chat_id if user_id is None else user_id
        command, _, rest = text.strip().partition(" ")
        name, _, addressee = command.lstrip("/").partition("@")
        name = name.lower()[:32]
        if chat_id not in self.allowed:
            suppressed = self.ignored.admit(str(chat_id))
            if suppressed is not None:
                payload: dict[str, Any] = {"chat_id": chat_id, "command": name}
                if suppressed:
                    payload["suppressed"] = suppressed
                self.audit("telegram.ignored", payload)
            return None
        if addressee and (self.bot_username is None or addressee.lower() != self.bot_username.lower()):
            # "/halt@OtherBot" in a group is for another bot: not Joe's to act on or answer.
            self.audit(
                "telegram.not_for_joe",
                {"chat_id": chat_id, "user_id": user, "command": name, "addressee": addressee[:64]},
            )
            return None
        arg = rest.strip()
        try:
            if name in (*MUTATING, "confirm") and not self._may_act(user):
                answer, outcome = (
                    f"user {user} may not ask or confirm /{name} here (TELEGRAM_USER_IDS)",
                    "refused: user not allowed",
                )
            elif name == "confirm":
                answer, outcome = await self._confirm(chat_id, user, arg)
            elif name in MUTATING:
                answer, outcome = self._ask(chat_id, user, name, arg)
            elif name in READ_ONLY:
                answer, outcome = getattr(self, f"_{name}")(), "answered"
            else:
                answer, outcome = f"unknown command {command!r}\n\n{HELP}", "unknown"
        except Exception as exc:  # a failing read must say so, not go silent
            answer, outcome = f"failed: {type(exc).__name__}: {exc}", "failed"
        self.audit(
            "telegram.command", {"chat_id": chat_id, "user_id": user, "command": name, "outcome": outcome}
        )
        return redact_text(answer)  # a chat is an outside channel: no secret leaves through it

    def _may_act(self, user: int) -> bool:
        return self.allowed_users is None or user in self.allowed_users

    # -- mutating: ask, then confirm -----------------------------------------------------------------

    def _ask(self, chat_id: int, user: int, action: str, reason: str) -> tuple[str, str]:
        if len(reason) < MIN_REASON:
            return f"/{action} needs a reason of at least {MIN_REASON} characters: /{action} <why>", "refused"
        if len(reason) > MAX_REASON:
            return f"/{action}: the reason is {len(reason)} characters; at most {MAX_REASON}", "refused"
        code = f"{secrets.randbelow(10**6):06d}"
        self.pending[(chat_id, user)] = Pending(action, reason, code, self.clock() + self.confirm_timeout_s)
        who = "" if user == chat_id else f" (only user {user} can confirm)"
        return (
            f"Confirm {action.upper()} ({reason}): reply /confirm {code} "
            f"within {self.confirm_timeout_s:.0f} s{who}",
            f"confirmation asked: {action}",
        )

    async def _confirm(self, chat_id: int, user: int, code: str) -> tuple[str, str]:
        from joe.safety.operator import deliver_alerts, pull_kill_switch_async, resume_trading
        from joe.safety.trading_state import ResumeRefused

        key = (chat_id, user)
        p = self.pending.get(key)
        if p is None:
            if any(c == chat_id for c, _u in self.pending):
                return (
                    "nothing of yours to confirm: only the person who asked can confirm it",
                    "refused: confirm by another user",
                )
            return "nothing to confirm", "no pending action"
        if self.clock() > p.deadline:
            del self.pending[key]
            return (
                f"{p.action.upper()} expired: nothing was done; send /{p.action} again",
                f"expired: {p.action}",
            )
        if code != p.code:
            p.wrong += 1
            if p.wrong >= MAX_WRONG_CODES:
                del self.pending[key]
                return (
                    f"wrong code {MAX_WRONG_CODES} times: {p.action.upper()} cancelled, nothing was done; "
                    f"send /{p.action} again",
                    f"cancelled after wrong codes: {p.action}",
                )
            return "wrong code: nothing was done", f"wrong code: {p.action}"
        del self.pending[key]
        by = f"telegram:{chat_id}" if user == chat_id else f"telegram:{chat_id}:user:{user}"
        if p.action == "resume":
            try:
                rec = resume_trading(self.ctx, reason=p.reason, by=by)
            except ResumeRefused as exc:
                return f"resume refused: {exc}", "refused: resume"
            answer = f"Trading is {rec.state.value.upper()} (by {rec.by}: {rec.reason})"
        else:
            out = await pull_kill_switch_async(self.rt, self.ctx, KillLevel(p.action), reason=p.reason, by=by)
            answer = f"Trading is {out.state.state.value.upper()} (by {out.state.by}: {out.state.reason})"
            if isinstance(out.flatten, str):
                answer += f"\nflatten {out.flatten}"
            elif isinstance(out.flatten, dict):
                flat = "FLAT" if out.flatten.get("flat") else out.flatten.get("error", "INCOMPLETE")
                answer += f"\nflatten: {flat}"
                if isinstance(out.flatten.get("paper"), str):
                    answer += f"\nflatten (paper) {out.flatten['paper']}"
            for e in out.errors:
                answer += f"\n{e}"
        try:
            await deliver_alerts(self.rt, self.ctx)
        except Exception:
            pass  # done and audited; the alert channel failing must not hide it
        return answer, f"done: {p.action}"

    # -- read-only ---------------------------------------------------------------------------------------

    def _snapshot(self) -> dict[str, Any]:
        from joe.safety.status import status_snapshot

        return status_snapshot(self.rt, self.ctx)

    def _help(self) -> str:
        return HELP

    def _mode(self) -> str:
        d = self.rt.decision
        return f"mode: {d.mode.value} ({'; '.join(d.reasons)})"

    def _status(self) -> str:
        s = self._snapshot()
        ts, p = s["trading_state"], s["daily_pnl"]
        lines = [
            f"mode: {s['mode']}",
            f"trading: {ts['state'].upper()} (by {ts['by']}: {ts['reason']})",
            f"today: PnL {p['pnl']} ({p['pnl_pct']}%), limit -{p['daily_loss_limit_pct']}%"
            + (" HIT" if p["limit_hit"] else ""),
            f"positions: {len(s['positions']) + len(s['broker_positions'])}, "
            f"working orders: {len(s['working_orders'])}",
            f"audit: {s['audit']['summary']}",
        ]
        if s["kill_file"]:
            lines.append(f"kill file: {s['kill_file']['level']} {s['kill_file']['reason']}")
        return "\n".join(lines)

    def _positions(self) -> str:
        from joe.runtime.read_model import positions

        p = positions(self.rt, self.ctx)
        lines = []
        for r in p["positions"]:
            dist = f" ({r['stop_distance_pct']}% away)" if r["stop_distance_pct"] else ""
            lines.append(
                f"{r['mode']} {r['symbol']} {r['quantity']} @ {r['avg_price']} "
                f"stop {r['stop'] or 'none'}{dist}"
            )
        for r in p["broker_positions"]:
            stops = ", ".join(f"{x['quantity']} @ {x['stop_price']}" for x in r["broker_stops"]) or "NONE"
            lines.append(
                f"{r['mode']} {r['broker']} {r['symbol']} {r['side']} {r['quantity']}: stops {stops}"
            )
        return "\n".join(lines) or "no open positions"

    def _orders(self) -> str:
        from joe.runtime.read_model import orders

        rows = orders(self.rt, state="working", limit=30)
        return (
            "\n".join(
                f"{o['symbol']} {o['side']} {o['leg']} {o['quantity']} {o['order_type']} {o['state']}"
                for o in rows
            )
            or "no working orders"
        )

    def _pnl(self) -> str:
        p = self._snapshot()["daily_pnl"]
        return (
            f"{p['day']}: equity {p['equity']}, PnL {p['pnl']} ({p['pnl_pct']}%) from {p['start_equity']}; "
            f"daily loss limit -{p['daily_loss_limit_pct']}%" + (" HIT" if p["limit_hit"] else "")
        )

    def _daily(self) -> str:
        curve = self.rt.store.equity_curve(self.rt.mode)
        last_by_day: dict[str, Decimal] = {}
        for pt in curve:
            last_by_day[pt.ts.date().isoformat()] = pt.equity
        days = sorted(last_by_day)[-7:]
        return "\n".join(f"{d}: {last_by_day[d]}" for d in days) or f"no {self.rt.mode} equity yet"

    def _report(self) -> str:
        from joe.runtime.read_model import latest_run

        run = latest_run(self.rt)
        if run is None:
            return "no finished run yet"
        summary = ", ".join(f"{k} {v}" for k, v in run["summary"].items())
        head = f"run {run['run_id']} ({run['mode']}, {run['source']}, as of {run['as_of']})"
        return f"{head}: {summary}\n{run['report_dir']}"
