"""Local fake Gemini, Telegram and Discord servers (HTTP on 127.0.0.1, free port, own thread).

Reusable by any test (also the end-to-end `joe run --once --push` test):

    with FakeTelegram() as tg, FakeDiscord() as dc:
        channels = build_channels(cfg, telegram_token=FAKE_TELEGRAM_TOKEN, telegram_chat_id="42",
                                  telegram_base_url=tg.base_url, discord_webhook_url=dc.webhook_url)
        ...
        assert len(tg.messages()) == 1 and len(dc.messages()) == 1

Each server records every request (`requests`), answers from a queue of scripted replies
(`enqueue`) and otherwise like the real service. The Telegram and Discord fakes reject what the
real services reject: over-long messages and (Telegram) HTML that does not parse.
"""

from __future__ import annotations

import json
import re
import threading
from collections import deque
from dataclasses import dataclass, field
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from joe.reporting.alerts.formatting import unescape_discord, utf16_len

FAKE_TELEGRAM_TOKEN = "123456789:AAFakeTokenForTestsOnly_abcdefghijklmn"
FAKE_DISCORD_WEBHOOK_PATH = "/api/webhooks/987654321/FakeWebhookTokenForTests-xyz_0123456789"
FAKE_GEMINI_KEY = "AIzaFakeGeminiKeyForTests0123456789abcd"


@dataclass(frozen=True)
class Recorded:
    """One request the fake received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"null")


@dataclass(frozen=True)
class Reply:
    """A scripted answer. `delay_s` holds the answer back (for timeouts); `drop` closes the socket."""

    status: int = 200
    json_body: Any = None
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    drop: bool = False


class FakeHTTPServer:
    """A threaded HTTP/1.1 server on 127.0.0.1 with scripted replies and a request log."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self._replies: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> FakeHTTPServer:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                req = Recorded(
                    self.command,
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    self.rfile.read(length) if length else b"",
                )
                with fake._lock:
                    fake.requests.append(req)
                    reply = fake._replies.popleft() if fake._replies else None
                if reply is None:
                    reply = fake.default_reply(req)
                if reply.delay_s:
                    fake._release.wait(reply.delay_s)
                if reply.drop:
                    self.close_connection = True
                    return
                body = json.dumps(reply.json_body).encode() if reply.json_body is not None else reply.body
                try:
                    self.send_response(reply.status)
                    if reply.json_body is not None:
                        self.send_header("Content-Type", "application/json; charset=utf-8")
                    for k, v in reply.headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout): nothing to answer

            do_POST = do_GET = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name=type(self).__name__, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()  # wake any delayed reply so shutdown is immediate
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        assert self._server is not None, "server not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # -- scripting ------------------------------------------------------------------------
    def enqueue(self, *replies: Reply) -> None:
        """Answer the next requests with these replies, in order, then fall back to the default."""
        with self._lock:
            self._replies.extend(replies)

    def default_reply(self, req: Recorded) -> Reply:
        return Reply(404, {"error": "not found"})


# -- Gemini -------------------------------------------------------------------------------------
def gemini_response(text: str, model: str = "gemini-2.5-flash") -> dict[str, Any]:
    """A realistic GenerateContentResponse body."""
    return {
        "candidates": [
            {
                "content": {"parts": [{"text": text}], "role": "model"},
                "finishReason": "STOP",
                "index": 0,
            }
        ],
        "usageMetadata": {"promptTokenCount": 812, "candidatesTokenCount": 143, "totalTokenCount": 955},
        "modelVersion": model,
        "responseId": "fake-response-1",
    }


def gemini_error(code: int, status: str, message: str) -> dict[str, Any]:
    """A Google API error body as Gemini returns it."""
    return {"error": {"code": code, "message": message, "status": status}}


class FakeGemini(FakeHTTPServer):
    """POST /v1[beta]/models/<model>:generateContent → a GenerateContentResponse with `answer`."""

    # The installed SDK defaults to api version v1; older ones used v1beta. Both are real paths.
    PATH = re.compile(r"^/(?P<version>v1|v1beta)/models/(?P<model>[^/:]+):generateContent$")

    def __init__(self, answer: str = "**Regime**: bull. Two longs taken; watch the VIX.") -> None:
        super().__init__()
        self.answer = answer

    def default_reply(self, req: Recorded) -> Reply:
        m = self.PATH.match(req.path.split("?")[0])
        if req.method != "POST" or not m:
            return Reply(404, gemini_error(404, "NOT_FOUND", "unknown path"))
        return Reply(200, gemini_response(self.answer, m["model"]))


# -- Telegram -----------------------------------------------------------------------------------
_TG_TAGS = {
    "b",
    "strong",
    "i",
    "em",
    "u",
    "ins",
    "s",
    "strike",
    "del",
    "code",
    "pre",
    "a",
    "tg-spoiler",
    "span",
    "blockquote",
    "tg-emoji",
}
_ENTITY = re.compile(r"&(#\d+|#x[0-9a-fA-F]+|lt|gt|amp|quot);")


class _TelegramHTML(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _TG_TAGS:
            self.errors.append(f"unsupported start tag {tag!r}")
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack.pop() != tag:
            self.errors.append(f"unexpected end tag {tag!r}")

    def handle_data(self, data: str) -> None:
        if "<" in data or ">" in data:
            self.errors.append("raw angle bracket")
        self.text.append(data)


def telegram_html_error(text: str) -> str | None:
    """Why Telegram would refuse `text` with parse_mode=HTML, or None if it parses (a strict subset check)."""
    if "&" in _ENTITY.sub("", text):
        return "can't parse entities: unsupported or unterminated entity"
    parser = _TelegramHTML()
    parser.feed(text)
    parser.close()
    if parser.errors or parser.stack or parser.rawdata:
        return f"can't parse entities: {(parser.errors or ['unclosed tag'])[0]}"
    return None


class FakeTelegram(FakeHTTPServer):
    """POST /bot<token>/sendMessage with the Bot API's answers (ok/result, 400 for bad text)."""

    PATH = re.compile(r"^/bot(?P<token>[^/]+)/sendMessage$")

    def __init__(self, token: str = FAKE_TELEGRAM_TOKEN) -> None:
        super().__init__()
        self.token = token
        self._message_id = 0

    def default_reply(self, req: Recorded) -> Reply:
        m = self.PATH.match(req.path)
        if req.method != "POST" or not m:
            return Reply(404, {"ok": False, "error_code": 404, "description": "Not Found"})
        if m["token"] != self.token:
            return Reply(401, {"ok": False, "error_code": 401, "description": "Unauthorized"})
        payload = req.json()
        text = payload.get("text") or ""
        if not text.strip():
            return _tg_error(400, "Bad Request: message text is empty")
        if payload.get("parse_mode") == "HTML" and (err := telegram_html_error(text)):
            return _tg_error(400, f"Bad Request: {err}")
        if utf16_len(text) > 4096:
            return _tg_error(400, "Bad Request: message is too long")
        with self._lock:
            self._message_id += 1
            mid = self._message_id
        return Reply(
            200,
            {
                "ok": True,
                "result": {
                    "message_id": mid,
                    "chat": {"id": payload.get("chat_id")},
                    "date": 1718395200,
                    "text": text,
                },
            },
        )

    def messages(self) -> list[dict[str, Any]]:
        """Payloads of the sendMessage requests that the fake accepted or refused (all received)."""
        return [r.json() for r in self.requests if self.PATH.match(r.path)]


def _tg_error(code: int, description: str) -> Reply:
    return Reply(code, {"ok": False, "error_code": code, "description": description})


def rate_limited_telegram(retry_after: int) -> Reply:
    """Telegram's 429 answer, with `parameters.retry_after` in seconds."""
    return Reply(
        429,
        {
            "ok": False,
            "error_code": 429,
            "description": f"Too Many Requests: retry after {retry_after}",
            "parameters": {"retry_after": retry_after},
        },
    )


# -- Discord ------------------------------------------------------------------------------------
class FakeDiscord(FakeHTTPServer):
    """POST /api/webhooks/<id>/<token>: 204 on success, 400 for empty or over-long content."""

    def __init__(self, webhook_path: str = FAKE_DISCORD_WEBHOOK_PATH) -> None:
        super().__init__()
        self.webhook_path = webhook_path

    @property
    def webhook_url(self) -> str:
        return self.base_url + self.webhook_path

    def default_reply(self, req: Recorded) -> Reply:
        if req.method != "POST" or req.path.split("?")[0] != self.webhook_path:
            return Reply(404, {"message": "Unknown Webhook", "code": 10015})
        content = (req.json() or {}).get("content") or ""
        if not content.strip():
            return Reply(400, {"message": "Cannot send an empty message", "code": 50006})
        if utf16_len(content) > 2000:
            return Reply(
                400,
                {
                    "message": "Invalid Form Body",
                    "code": 50035,
                    "errors": {"content": {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH"}]}},
                },
            )
        return Reply(204)

    def messages(self) -> list[dict[str, Any]]:
        return [r.json() for r in self.requests if r.path.split("?")[0] == self.webhook_path]

    def texts(self) -> list[str]:
        """Message contents with Discord's markdown escapes removed (what a reader sees)."""
        return [unescape_discord(m["content"]) for m in self.messages()]


def rate_limited_discord(retry_after: float, header: bool = True) -> Reply:
    headers = {"Retry-After": str(int(retry_after + 0.999))} if header else {}
    return Reply(
        429,
        {"message": "You are being rate limited.", "retry_after": retry_after, "global": False},
        headers=headers,
    )
