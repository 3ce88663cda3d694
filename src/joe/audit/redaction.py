"""Secret redaction: a process-wide registry of secret values plus field-name rules.

Two independent nets catch a secret before it reaches a log line, an audit record, a report
or an exception message shown to a user:

* **by value** — every registered secret (API keys, passwords, CST / X-SECURITY-TOKEN session
  tokens, bot tokens, webhook URLs...) is replaced by ``***`` wherever it occurs inside any
  string, including inside URLs such as ``https://api.telegram.org/bot<TOKEN>/sendMessage``;
* **by field name** — a value stored under a secret-looking key (``api_key``, ``X-CAP-API-KEY``,
  ``password``, ``cst``, ``authorization``...) is replaced whatever it is, so a secret that was
  never registered still does not leak through a structured payload.

A few well-known shapes (``Bearer <token>``, ``Basic <base64>``, Telegram bot URLs, Discord
webhook URLs, ``password=...`` in free text) are also masked in text as a last line of defence.

The local simulators' published demo credentials (`joe.core.demo_credentials`: ``sim-api-key``,
``sim-password``...) are not secrets: they are never registered and stay visible in text after a
secret-looking name (``CAPITAL_PASSWORD=sim-password``), so `joe sim capital` can print what to export.
Only those exact values are exempt, and only in text: a structured field named like a secret is
still masked whatever it holds (the audit log never stores a password, demo or not).

A registered secret is matched whatever its case (an upper-cased key is still the key) and in the
forms it takes when embedded elsewhere — every composition of up to two encoders (JSON escapes,
``repr``, URL quoting, base64 at each byte alignment, hex, case folding...; see
`joe.audit.secret_forms`) — and whatever layout a renderer inserted inside it (a console wrapping the
value across two lines with indentation, ANSI colour codes, NUL bytes).

Matching uses precompiled prefix-trie regular expressions over the text with its layout removed, so
``redact_text`` is cheap enough to run on every log line. Each registration adds its own matcher
(merged log-structured, never one rebuilt from every form), and a rotating session token stays
registered only while it is one of the last few of its kind: see `joe.audit.secret_segments`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from joe.audit.secret_forms import secret_forms, sub_union, truncated_forms
from joe.audit.secret_segments import SecretSegments
from joe.core.demo_credentials import is_public_demo_value

MASK = "***"
MIN_SECRET_LENGTH = 4

# Environment variable names whose values are secret (substring match on the upper-cased name).
# "PASS" covers MY_BROKER_PASS, DB_PASS, PASSPHRASE, PASSWORD: a false positive only masks a value.
_SECRET_ENV_MARKERS = ("KEY", "SECRET", "PASS", "TOKEN", "CST", "WEBHOOK", "CREDENTIAL")
# Names containing these markers are switches/confirmations, not secrets (e.g. JOE_CONFIRM_LIVE).
_NON_SECRET_ENV_MARKERS = ("CONFIRM",)
# The secrets Joe knows it handles; always treated as secret whatever the rules above say.
KNOWN_SECRET_ENV_VARS = frozenset(
    {"CAPITAL_API_KEY", "CAPITAL_PASSWORD", "GEMINI_API_KEY", "TELEGRAM_BOT_TOKEN", "DISCORD_WEBHOOK_URL"}
)
# Values so common that masking them everywhere would wreck every log line; an env var that
# merely *looks* secret (e.g. FOO_KEY_ENABLED=true) must not make us mask "true" globally.
_TRIVIAL_VALUES = frozenset(
    {"true", "false", "yes", "no", "none", "null", "paper", "live", "shadow", "demo", "test", "default"}
)

# Normalised (lower-case, no '-' / '_' / spaces) field names whose values are always masked.
_SECRET_FIELDS = frozenset(
    {
        "apikey",
        "xcapapikey",
        "password",
        "passwd",
        "secret",
        "token",
        "accesstoken",
        "refreshtoken",
        "cst",
        "xsecuritytoken",
        "securitytoken",
        "authorization",
        "proxyauthorization",
        "cookie",
        "setcookie",
        "webhookurl",
        "webhook",
        "bottoken",
        "key",
        "clientsecret",
        "privatekey",
        "credential",
        "credentials",
    }
)
# ...and names *ending* in one of these (gemini_api_key, telegram_bot_token, discord_webhook_url).
_SECRET_FIELD_SUFFIXES = ("apikey", "password", "passwd", "secret", "token", "webhookurl", "privatekey")

_TEXT_PATTERNS: tuple[tuple[re.Pattern[str], str | None], ...] = (
    # Authorization: Bearer <token>
    (re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]{8,}"), r"\1 " + MASK),
    # Authorization: Basic <base64 of user:password>
    (re.compile(r"(?i)\b(basic)\s+[A-Za-z0-9+/_-]{6,}={0,2}"), r"\1 " + MASK),
    # Telegram bot URLs: /bot123456:AA...xyz/
    (re.compile(r"\bbot\d{3,}:[A-Za-z0-9_-]{10,}"), "bot" + MASK),
    # Discord webhook URLs: /api/webhooks/<id>/<token>
    (re.compile(r"(/api/webhooks/\d+/)[A-Za-z0-9._-]+"), r"\1" + MASK),
    # password=..., "api_key": "...", X-SECURITY-TOKEN: ... in free text (dumped headers, query strings).
    (
        re.compile(
            r"""(?ix)
            (?<![a-z0-9])
            ((?:x[-_]?cap[-_]?api[-_]?key|api[-_]?key|password|passwd|secret|access[-_]?token|
                x[-_]?security[-_]?token|security[-_]?token|bot[-_]?token|cst|token|authorization)
             ['"]?\s*[:=]\s*['"]?)
            (?!\*\*\*|bearer\s|basic\s)[^\s'"&,;}\]]{3,}
            """
        ),
        None,  # `_keep_demo`: a published demo value stays visible
    ),
    # A header as a (name, value) pair, as httpcore's DEBUG trace prints them: (b'CST', b'...').
    (
        re.compile(
            r"""(?ix)
            (\(\s*b?['"](?:x[-_]?cap[-_]?api[-_]?key|x[-_]?security[-_]?token|cst|authorization|
                proxy[-_]authorization|cookie|set[-_]cookie|api[-_]?key)['"]\s*,\s*b?['"])
            (?!\*\*\*)[^'"]{3,}
            """
        ),
        None,
    ),
)


def _keep_demo(match: re.Match[str]) -> str:
    """`name=value` masked, unless the value is one of the simulators' published demo credentials."""
    value = match.group(0)[len(match.group(1)) :]
    return match.group(0) if is_public_demo_value(value) else match.group(1) + MASK


_segments = SecretSegments()


def register_secret(value: str | None, *, slot: str | None = None) -> None:
    """Remember `value` as a secret so it is masked wherever it appears (values < 4 chars are ignored).

    The simulators' published demo credentials are not secrets and are ignored.

    Every form `joe.audit.secret_forms.secret_forms` generates is registered too (case changes,
    JSON / repr / URL / HTML escapes, base64, hex, and their compositions up to depth 2), plus the
    value cut short by an ellipsis; matching ignores case and layout inserted inside the value.

    `slot` names a secret that rotates (a broker session token: ``"capital.cst"``): only the last
    `joe.audit.secret_segments.SESSION_TOKENS_KEPT` values of a slot stay registered. Without it the
    secret stays registered for the process's life.
    """
    if not value or len(value.strip()) < MIN_SECRET_LENGTH or is_public_demo_value(value):
        return
    # The value as given and stripped (an env value may carry a stray newline).
    values = {v for v in {value, value.strip()} if len(v) >= MIN_SECRET_LENGTH and v.strip("*")}
    forms: set[str] = set()
    for v in values:
        forms |= secret_forms(v) | truncated_forms(v)
    _segments.add(forms, slot)


def clear_secrets() -> None:
    """Forget every registered secret (for tests; production code never needs this)."""
    _segments.clear()


def registered_secret_count() -> int:
    """How many secret forms are registered (never the values themselves)."""
    return _segments.form_count()


def matcher_count() -> int:
    """How many matchers mask each text (see `joe.audit.secret_segments`; bounded by design)."""
    return _segments.segment_count()


def is_secret_env_name(name: str) -> bool:
    """True when an environment variable called `name` holds a secret."""
    upper = name.upper()
    if upper in KNOWN_SECRET_ENV_VARS:
        return True
    if any(m in upper for m in _NON_SECRET_ENV_MARKERS):
        return False
    return any(m in upper for m in _SECRET_ENV_MARKERS)


def register_secrets_from_env(environ: Mapping[str, str] | None = None) -> list[str]:
    """Register the values of every secret-looking environment variable; returns the NAMES registered.

    Trivial values (``true``, ``paper``, short numbers...) are skipped: masking them in every log
    line would destroy the logs without protecting anything.
    """
    env = os.environ if environ is None else environ
    names: list[str] = []
    for name, value in env.items():
        if not value or not is_secret_env_name(name):
            continue
        v = value.strip()
        if len(v) < MIN_SECRET_LENGTH or v.lower() in _TRIVIAL_VALUES or (v.isdigit() and len(v) < 6):
            continue
        if is_public_demo_value(v):  # the simulators' published demo values are not secrets
            continue
        register_secret(value)
        names.append(name)
    return sorted(names)


def is_secret_field(name: str) -> bool:
    """True when a mapping key named `name` holds a secret (case, '-' and '_' insensitive)."""
    norm = name.lower().replace("-", "").replace("_", "").replace(" ", "")
    return norm in _SECRET_FIELDS or norm.endswith(_SECRET_FIELD_SUFFIXES)


def redact_text(text: str) -> str:
    """Return `text` with every registered secret and well-known secret shape replaced by ``***``."""
    matchers = _segments.matchers()
    if matchers:
        # Repeat while it changes: a secret containing '*' can re-form across a mask. This ends
        # because every match replaces at least one non-'*' character (all-'*' secrets are refused).
        while (new := sub_union(matchers, text, MASK)) != text:
            text = new
    for rx, repl in _TEXT_PATTERNS:
        text = rx.sub(_keep_demo if repl is None else repl, text)
    return text


def redact(obj: Any) -> Any:
    """Deep-copy `obj` with secrets masked.

    Dicts, lists and tuples are copied; a value under a secret-looking key becomes ``***``
    (``None`` stays ``None``; a structured field is masked whatever its value, demo credentials
    included: nothing needs to show them there); strings (values and keys) go through
    `redact_text`. Other objects are returned unchanged — render them to text and use
    `redact_text` when they may hold secrets.
    """
    if isinstance(obj, str):
        return redact_text(obj)
    if isinstance(obj, Mapping):
        out: dict[Any, Any] = {}
        for k, v in obj.items():
            if isinstance(k, str) and is_secret_field(k):
                out[redact_text(k)] = v if v is None else MASK
            else:
                out[redact_text(k) if isinstance(k, str) else k] = redact(v)
        return out
    if isinstance(obj, list):
        return [redact(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(redact(v) for v in obj)
    return obj
