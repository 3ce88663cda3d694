"""Session pieces: credentials (never printed), password encryption and the live token state.

Capital.com sessions are a `CST` + `X-SECURITY-TOKEN` pair issued by `POST /session`. They die
after 10 minutes without use (and reportedly about an hour after creation); a refreshed pair may
come back on any response and is adopted. Every token we see is registered with the redaction
registry so it can never reach a log line, an audit record or an exception message.
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass, field
from typing import Any

from joe.audit.redaction import register_secret


@dataclass(frozen=True, slots=True)
class Credentials:
    """API key + login identifier + the API key's custom password. `repr` shows none of them."""

    api_key: str = field(repr=False)
    identifier: str = field(repr=False)
    password: str = field(repr=False)
    encrypted_password: bool = False

    def __post_init__(self) -> None:
        for secret in (self.api_key, self.password):
            register_secret(secret)


def encrypt_password(password: str, encryption_key_b64: str, timestamp: int) -> str:
    """Encrypt the password the documented way (spec §3.3).

    Base64(`password|timestamp`) encrypted with RSA PKCS#1 v1.5 under the X.509 DER public key from
    `GET /session/encryptionKey`, then Base64 again.
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    key = serialization.load_der_public_key(base64.b64decode(encryption_key_b64))
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("encryption key is not an RSA public key")
    plain = base64.b64encode(f"{password}|{timestamp}".encode())
    return base64.b64encode(key.encrypt(plain, padding.PKCS1v15())).decode()


@dataclass
class SessionState:
    """The tokens and facts of the current login; `generation` counts logins (for de-duplicating)."""

    cst: str = field(default="", repr=False)
    security_token: str = field(default="", repr=False)
    account_id: str = ""
    streaming_host: str = ""
    account_type: str = ""
    currency: str = ""
    generation: int = 0
    created_at: float = 0.0
    last_used: float = 0.0
    login_body: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def active(self) -> bool:
        return bool(self.cst and self.security_token)

    def adopt(self, cst: str | None, security_token: str | None) -> bool:
        """Take refreshed tokens from response headers; returns True if anything changed.

        Each token is registered as a rotating secret (its slot keeps the last few values masked, see
        `joe.audit.secret_segments.SESSION_TOKENS_KEPT`), so weeks of re-logins do not grow the matcher.
        """
        changed = False
        if cst and cst != self.cst:
            register_secret(cst, slot="capital.cst")
            self.cst = cst
            changed = True
        if security_token and security_token != self.security_token:
            register_secret(security_token, slot="capital.security_token")
            self.security_token = security_token
            changed = True
        return changed

    def start(self, cst: str, security_token: str, body: dict[str, Any], now: float | None = None) -> None:
        """A new login succeeded: take its tokens and facts and bump the generation."""
        self.adopt(cst, security_token)
        now = time.monotonic() if now is None else now
        self.created_at = self.last_used = now
        self.generation += 1
        self.login_body = body
        self.account_id = str(body.get("currentAccountId") or self.account_id)
        self.streaming_host = str(body.get("streamingHost") or self.streaming_host)
        self.account_type = str(body.get("accountType") or self.account_type)
        self.currency = str(body.get("currencyIsoCode") or self.currency)

    def clear(self) -> None:
        self.cst = self.security_token = ""

    def headers(self) -> dict[str, str]:
        return {"CST": self.cst, "X-SECURITY-TOKEN": self.security_token} if self.active else {}
