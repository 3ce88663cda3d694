"""Review r16, defect 5: in an allow-listed *group* Joe acts for people, not for the chat.

Through python-telegram-bot and the fake Bot API (Joe's username there is ``joe_test_bot``):
a command addressed to another bot (``/halt@SomeOtherBot``) is not answered and does nothing; a
confirmation from another member than the asker is refused; the asker's own confirmation works, also
when addressed to Joe by name; with `allowed_users` only those people may ask at all.
"""

from __future__ import annotations

import asyncio
import time

from joe.runtime.bootstrap import Runtime
from joe.safety.control import SafetyContext
from joe.safety.trading_state import TradingState
from joe.telegram import TelegramControl, build_application

from .fake_bot_api import FakeBotApi
from .test_telegram import TOKEN, Clock, audit_events, rt  # noqa: F401 (fixture)

GROUP = -100123456  # the desk's group chat, allow-listed
OWNER, INTERN = 1111, 2222


def group_msg(api: FakeBotApi, user: int, text: str) -> None:
    api.updates.append(
        {
            "update_id": api._next_update,
            "message": {
                "message_id": api._next_update,
                "date": int(time.time()),
                "chat": {"id": GROUP, "type": "supergroup", "title": "desk"},
                "from": {"id": user, "is_bot": False, "first_name": f"u{user}"},
                "text": text,
                "entities": [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}],
            },
        }
    )
    api._next_update += 1
    api._new.set()


async def answer_after(api: FakeBotApi, before: int, *, expect: bool = True) -> str | None:
    for _ in range(60 if expect else 12):
        if len(api.sent) > before:
            return str(api.sent[-1]["text"])
        await asyncio.sleep(0.05)
    assert not expect, "no answer"
    return None


def state(rt: Runtime) -> TradingState:  # noqa: F811
    return SafetyContext.from_runtime(rt).states.current().state


async def _run(rt: Runtime, ctl: TelegramControl, script: list[tuple[int, str, bool]]) -> list[str | None]:  # noqa: F811
    api = FakeBotApi(TOKEN)
    await api.start()
    app = build_application(ctl, TOKEN, base_url=api.url)
    await app.initialize()
    await app.start()
    assert app.updater is not None
    await app.updater.start_polling(poll_interval=0.0, timeout=1)
    out: list[str | None] = []
    try:
        for user, text, expect in script:
            n = len(api.sent)
            if "{code}" in text:
                prev = next((a for a in reversed(out) if a and "/confirm " in a), "/confirm 000000")
                text = text.replace("{code}", prev.split("/confirm ")[1].split()[0])
            group_msg(api, user, text)
            out.append(await answer_after(api, n, expect=expect))
    finally:
        await app.updater.stop()
        await app.stop()
        await app.shutdown()
        await api.stop()
    return out


async def test_another_bots_command_and_another_members_confirm_do_nothing(rt: Runtime) -> None:  # noqa: F811
    ctl = TelegramControl(rt, SafetyContext.from_runtime(rt), {GROUP}, clock=Clock())
    out = await _run(rt, ctl, [
        (INTERN, "/halt@SomeOtherBot pause the other bot's alerts", False),  # not for Joe: no answer
        (INTERN, "/flatten@joe_test_bot close everything please", True),  # for Joe, by name
        (OWNER, "/confirm {code}", True),  # another member confirms: refused
    ])  # fmt: skip
    assert out[0] is None
    assert out[1] is not None and "/confirm " in out[1] and f"only user {INTERN}" in out[1]
    assert out[2] is not None and "only the person who asked" in out[2]
    assert state(rt) is TradingState.ACTIVE
    events = [e for e in audit_events(rt) if e["event"].startswith("telegram.")]
    assert any(
        e["event"] == "telegram.not_for_joe" and e["payload"]["addressee"] == "SomeOtherBot" for e in events
    )
    assert any(e["payload"].get("outcome") == "refused: confirm by another user" for e in events)


async def test_the_askers_own_confirmation_halts(rt: Runtime) -> None:  # noqa: F811
    ctl = TelegramControl(rt, SafetyContext.from_runtime(rt), {GROUP}, clock=Clock())
    out = await _run(rt, ctl, [
        (OWNER, "/halt@joe_test_bot stop new entries now", True),
        (OWNER, "/confirm@joe_test_bot {code}", True),
    ])  # fmt: skip
    assert out[1] is not None and "HALTED" in out[1]
    assert state(rt) is TradingState.HALTED
    cur = SafetyContext.from_runtime(rt).states.current()
    assert cur.by == f"telegram:{GROUP}:user:{OWNER}"


async def test_allowed_users_only_may_ask(rt: Runtime) -> None:  # noqa: F811
    ctl = TelegramControl(rt, SafetyContext.from_runtime(rt), {GROUP}, clock=Clock(), allowed_users={OWNER})
    out = await _run(rt, ctl, [
        (INTERN, "/halt stop new entries now", True),
        (INTERN, "/status", True),  # reading stays open to the chat
    ])  # fmt: skip
    assert out[0] is not None and "may not ask" in out[0] and "/confirm" not in out[0]
    assert out[1] is not None and "trading: ACTIVE" in out[1]
    assert ctl.pending == {} and state(rt) is TradingState.ACTIVE
