"""Telegram against a hostile or careless sender: a code is not guessed by trying (three wrong codes
cancel), a reason has the dashboard's limits, a stranger's flood is summarised in the audit log, a
secret never leaves through an answer, and an edited old command does not act again (through the real
python-telegram-bot and the fake Bot API)."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from joe.audit.redaction import register_secret
from joe.runtime.bootstrap import Runtime
from joe.safety.control import SafetyContext
from joe.safety.trading_state import TradingState
from joe.telegram import TelegramControl, build_application

from .fake_bot_api import FakeBotApi
from .test_telegram import ALLOWED, STRANGER, TOKEN, Clock, audit_events, rt  # noqa: F401 (fixture)


def control(rt: Runtime, clock: Clock | None = None) -> TelegramControl:  # noqa: F811
    return TelegramControl(rt, SafetyContext.from_runtime(rt), {ALLOWED}, clock=clock or Clock())


def code_of(answer: str | None) -> str:
    assert answer is not None and "/confirm " in answer, answer
    return answer.split("/confirm ")[1].split()[0]


async def test_three_wrong_codes_cancel_the_pending_action(rt: Runtime) -> None:  # noqa: F811
    c = control(rt)
    code = code_of(await c.handle(ALLOWED, "/flatten everything now"))
    wrong = "000000" if code != "000000" else "111111"
    assert "wrong code" in (await c.handle(ALLOWED, f"/confirm {wrong}") or "")
    assert "wrong code" in (await c.handle(ALLOWED, f"/confirm {wrong}") or "")
    third = await c.handle(ALLOWED, f"/confirm {wrong}") or ""
    assert "cancelled" in third and "FLATTEN" in third
    assert "nothing to confirm" in (await c.handle(ALLOWED, f"/confirm {code}") or "")  # even the right one
    assert SafetyContext.from_runtime(rt).states.current().state is TradingState.ACTIVE


async def test_a_reason_has_the_dashboards_limits(rt: Runtime) -> None:  # noqa: F811
    c = control(rt)
    assert "at least 5" in (await c.handle(ALLOWED, "/halt why") or "")
    long = await c.handle(ALLOWED, "/halt " + "x" * 501) or ""
    assert "at most 500" in long and "/confirm" not in long
    assert c.pending == {}


async def test_a_strangers_flood_is_summarised_in_the_audit_log(rt: Runtime) -> None:  # noqa: F811
    clock = Clock()
    c = control(rt, clock)
    for _ in range(50):
        assert await c.handle(STRANGER, "/flatten " + "z" * 3000) is None
    ignored = [e for e in audit_events(rt) if e["event"] == "telegram.ignored"]
    assert len(ignored) == 20 and all(len(e["payload"]["command"]) <= 32 for e in ignored)
    clock.t += 60
    assert await c.handle(STRANGER, "/status") is None
    last = [e for e in audit_events(rt) if e["event"] == "telegram.ignored"][-1]
    assert last["payload"] == {"chat_id": STRANGER, "command": "status", "suppressed": 30}


async def test_a_secret_never_leaves_through_an_answer(rt: Runtime) -> None:  # noqa: F811
    secret = "sk-live-SECRET-0123456789abcdef"
    register_secret(secret)
    c = control(rt)

    def boom() -> str:
        raise RuntimeError(f"broker said no to key {secret}")

    c._status = boom  # type: ignore[method-assign]
    answer = await c.handle(ALLOWED, "/status") or ""
    assert "failed: RuntimeError" in answer and secret not in answer


async def test_an_edited_command_does_not_act_again(rt: Runtime) -> None:  # noqa: F811
    api = FakeBotApi(TOKEN)
    await api.start()
    c = control(rt)
    app = build_application(c, TOKEN, base_url=api.url)
    await app.initialize()
    await app.start()
    assert app.updater is not None
    await app.updater.start_polling(poll_interval=0.0, timeout=1)
    try:
        api.message(ALLOWED, "/halt first halt")
        await until(lambda: len(api.sent) == 1)
        code = code_of(api.sent[0]["text"])
        # The user edits the old /halt message into a /confirm: an edit is not a new command.
        edited: dict[str, Any] = {
            "update_id": 99,
            "edited_message": {
                "message_id": 1, "date": int(time.time()), "edit_date": int(time.time()),
                "chat": {"id": ALLOWED, "type": "private", "first_name": "Trader"},
                "from": {"id": ALLOWED, "is_bot": False, "first_name": "Trader"},
                "text": f"/confirm {code}",
            },
        }  # fmt: skip
        api.updates.append(edited)
        api._next_update = 100
        api.message(ALLOWED, "/mode")
        await until(lambda: len(api.sent) == 2)  # /mode answered: the edit came before it and was skipped
        assert api.sent[1]["text"].startswith("mode:")
        assert SafetyContext.from_runtime(rt).states.current().state is TradingState.ACTIVE
        assert (ALLOWED, ALLOWED) in c.pending  # still waiting for a real /confirm
    finally:
        await app.updater.stop()
        await app.stop()
        await app.shutdown()
        await api.stop()
    commands = [e["payload"]["command"] for e in audit_events(rt) if e["event"] == "telegram.command"]
    assert commands == ["halt", "mode"]
    assert json.dumps(api.sent).count("Trading is") == 0


async def until(cond: Any, timeout: float = 120.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():
        assert loop.time() < end, "timed out"
        await asyncio.sleep(0.05)
