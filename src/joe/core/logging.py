"""Structured logging (structlog over stdlib logging) with secret redaction on every line.

`configure_logging` installs one handler on the root logger, so Joe's own structlog loggers and
third-party stdlib loggers (httpx, websockets, ib_async...) are rendered by the same structlog
processor chain. That chain redacts the event dict (by field name and registered secret value,
see `joe.audit.redaction`), renders exceptions as plain text *before* redaction (so a secret in an
exception message or traceback is masked too; no locals are ever rendered), and finally redacts
the rendered line once more. A secret therefore cannot reach a log line by any path.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from joe.audit.redaction import redact, redact_text, register_secrets_from_env

_HANDLER_NAME = "joe-structlog"
_configured = False


def _redact_event(_logger: WrappedLogger, _name: str, event_dict: EventDict) -> EventDict:
    """Processor: mask secrets in every key and value of the event dict (values rendered to text)."""
    out: EventDict = {}
    for key, value in redact(dict(event_dict)).items():
        if isinstance(value, str | int | float | bool) or value is None:
            out[key] = value
        elif isinstance(value, dict | list | tuple):
            out[key] = redact(value)
        else:
            # Arbitrary objects are rendered later via repr(); do it now so the text can be masked.
            out[key] = redact_text(repr(value))
    return out


class _RedactingFormatter(structlog.stdlib.ProcessorFormatter):
    """ProcessorFormatter whose final output is redacted once more (belt and braces)."""

    def format(self, record: logging.LogRecord) -> str:
        return redact_text(super().format(record))


class _CurrentStderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at each record, not the one at configuration time: a
    logger configured at import still goes through `joe.audit.streams` (redaction, and a console
    that went away does not stop the run)."""

    @property  # type: ignore[override]
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


CHATTY_LIBRARIES = ("httpx", "httpcore", "websockets", "ib_async", "aiohttp.access")


class _ScrubFilter(logging.Filter):
    """httpx logs request URLs (a Telegram URL holds the bot token): scrub at the source, so even
    handlers that bypass Joe's log formatting (pytest's caplog, a host app's logging) never see it.
    Installed on import of this module (every Joe process imports it), not only by the alert channels."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact_text(record.getMessage())
        record.args = None
        return True


_SCRUB_FILTER = _ScrubFilter()
# On every logger the libraries log through: a logger's filters are not consulted for its children's
# records, and httpcore logs only through its children (its DEBUG trace prints response headers);
# websockets' DEBUG lines print each frame, Capital.com's subscribe messages with the session pair.
SCRUBBED_LOGGERS = (
    "httpx",
    "httpcore",
    "httpcore.connection",
    "httpcore.http11",
    "httpcore.http2",
    "httpcore.proxy",
    "httpcore.socks",
    "websockets.client",
    "websockets.server",
)
for _name in SCRUBBED_LOGGERS:
    logging.getLogger(_name).addFilter(_SCRUB_FILTER)


def configure_logging(
    level: str = "INFO",
    json: bool = False,
    stream: TextIO | None = None,
    *,
    register_env_secrets: bool = True,
) -> None:
    """Route all logging through structlog, rendered as JSON lines or plain console text, redacted.

    Also registers the values of secret-looking environment variables (CAPITAL_API_KEY, ...) with
    the redaction registry. Safe to call again (tests reconfigure to a StringIO): the previous Joe
    handler is replaced.
    """
    global _configured
    if register_env_secrets:
        register_secrets_from_env()
    timestamper = structlog.processors.TimeStamper(fmt="iso", utc=True)
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        timestamper,
    ]
    renderer: Processor = (
        structlog.processors.JSONRenderer(default=str)
        if json
        else structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback)
    )
    formatter = _RedactingFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder()],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,  # render tracebacks to text so they get redacted
            _redact_event,
            renderer,
        ],
    )
    handler: logging.Handler = _CurrentStderrHandler() if stream is None else logging.StreamHandler(stream)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(formatter)

    root = logging.getLogger()
    for old in list(root.handlers):
        if old.get_name() == _HANDLER_NAME:
            root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Per-request chatter from the HTTP, WebSocket and TWS clients shows only at DEBUG.
    chatty_level = logging.NOTSET if level.upper() == "DEBUG" else logging.WARNING
    for name in CHATTY_LIBRARIES:
        logging.getLogger(name).setLevel(chatty_level)

    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.UnicodeDecoder(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        # Not cached, so a later configure_logging() (e.g. --json, tests) takes effect everywhere.
        cache_logger_on_first_use=False,
    )
    _configured = True


def get_logger(name: str | None = None, **initial: Any) -> structlog.stdlib.BoundLogger:
    """A structlog logger bound to `name`; configures the redacting defaults if nobody has yet."""
    if not _configured:
        configure_logging()
    return structlog.stdlib.get_logger(name, **initial)
