"""A local fake of the Telegram Bot API (getMe, deleteWebhook, getUpdates long-poll, sendMessage) on
127.0.0.1, speaking the real wire format python-telegram-bot uses: POST /bot<token>/<method> with
form-encoded (or JSON) parameters, answers ``{"ok": true, "result": ...}``."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from aiohttp import web


class FakeBotApi:
    def __init__(self, token: str) -> None:
        self.token = token
        self.updates: list[dict[str, Any]] = []
        self.sent: list[dict[str, Any]] = []
        self.calls: list[str] = []
        self._next_update = 1
        self._next_message = 100
        self._new = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/bot{token}/{method}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def message(self, chat_id: int, text: str) -> None:
        """Queue a user's message from `chat_id` (a private chat) for the next getUpdates."""
        entities = (
            [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
            if text.startswith("/")
            else []
        )
        self.updates.append(
            {
                "update_id": self._next_update,
                "message": {
                    "message_id": self._next_update,
                    "date": int(time.time()),
                    "chat": {"id": chat_id, "type": "private", "first_name": "Trader"},
                    "from": {"id": chat_id, "is_bot": False, "first_name": "Trader"},
                    "text": text,
                    "entities": entities,
                },
            }
        )
        self._next_update += 1
        self._new.set()

    async def _params(self, request: web.Request) -> dict[str, Any]:
        if request.content_type == "application/json":
            return dict(await request.json())
        form = await request.post()
        out: dict[str, Any] = {}
        for k, v in form.items():
            try:
                out[k] = json.loads(str(v))
            except ValueError:
                out[k] = str(v)
        return out

    async def _handle(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.json_response(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401
            )
        method = request.match_info["method"]
        self.calls.append(method)
        p = await self._params(request)
        if method == "getMe":
            return self._ok(
                {
                    "id": 1,
                    "is_bot": True,
                    "first_name": "Joe",
                    "username": "joe_test_bot",
                    "can_join_groups": False,
                    "can_read_all_group_messages": False,
                    "supports_inline_queries": False,
                }
            )
        if method == "deleteWebhook":
            return self._ok(True)
        if method == "getUpdates":
            offset = int(p.get("offset") or 0)
            pending = [u for u in self.updates if u["update_id"] >= offset]
            if not pending:
                self._new.clear()
                try:
                    await asyncio.wait_for(self._new.wait(), timeout=min(float(p.get("timeout") or 0), 0.3))
                except TimeoutError:
                    pass
                pending = [u for u in self.updates if u["update_id"] >= offset]
            return self._ok(pending)
        if method == "sendMessage":
            self.sent.append({"chat_id": int(p["chat_id"]), "text": str(p["text"])})
            self._next_message += 1
            return self._ok(
                {
                    "message_id": self._next_message,
                    "date": int(time.time()),
                    "chat": {"id": int(p["chat_id"]), "type": "private"},
                    "text": str(p["text"]),
                }
            )
        return web.json_response({"ok": False, "error_code": 404, "description": "Not Found"}, status=404)

    @staticmethod
    def _ok(result: Any) -> web.Response:
        return web.json_response({"ok": True, "result": result})
