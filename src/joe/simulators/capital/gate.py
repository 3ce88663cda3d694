"""The simulator's front door: API key and login checks, sessions with idle expiry, rate limits.

Limits mirror spec §8 and can be scaled down for tests (`SimLimits.scaled`). They are enforced
strictly on the time each request is handled, with no slack: the real service's slack is unknown.
"""

from __future__ import annotations

import base64
import secrets
import time
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Any

from joe.core.demo_credentials import CAPITAL_SIM_API_KEY, CAPITAL_SIM_IDENTIFIER, CAPITAL_SIM_PASSWORD
from joe.simulators.capital.rules import ApiError


@dataclass(frozen=True, slots=True)
class SimLimits:
    """Server-side limits; `scaled(k)` divides every time window by k."""

    requests_per_window: int = 10
    window_s: float = 1.0
    order_spacing_s: float = 0.1
    login_spacing_s: float = 1.0
    demo_orders_per_hour: int = 1000
    hour_s: float = 3600.0

    def scaled(self, k: float) -> SimLimits:
        return replace(
            self,
            window_s=self.window_s / k,
            order_spacing_s=self.order_spacing_s / k,
            login_spacing_s=self.login_spacing_s / k,
            hour_s=self.hour_s / k,
        )


@dataclass
class SimSession:
    cst: str
    xst: str
    account_id: str
    created: float
    last_used: float
    valid: bool = True


@dataclass
class Login:
    """The one login the simulator knows (an API key with its custom password).

    The defaults are the published demo values of `joe.core.demo_credentials` (not secrets).
    """

    api_key: str = CAPITAL_SIM_API_KEY
    identifier: str = CAPITAL_SIM_IDENTIFIER
    password: str = CAPITAL_SIM_PASSWORD


@dataclass
class Gate:
    limits: SimLimits = field(default_factory=SimLimits)
    login: Login = field(default_factory=Login)
    idle_s: float = 600.0
    max_age_s: float | None = None
    sessions: dict[str, SimSession] = field(default_factory=dict)
    aliases: dict[str, tuple[str, SimSession]] = field(default_factory=dict)  # old cst -> (old xst, session)
    _general: deque[float] = field(default_factory=deque)
    _hourly: deque[float] = field(default_factory=deque)
    _last_order: float = float("-inf")
    _last_login: float = float("-inf")
    _key: Any = None
    key_timestamp: int = 0

    # ------------------------------------------------------------------ password encryption
    def encryption_key(self, now_ms: int | None = None) -> dict[str, Any]:
        """The public key and its `timeStamp` (epoch ms from the simulator's clock when given)."""
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        if self._key is None:
            self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        der = self._key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.key_timestamp = int(time.time() * 1000) if now_ms is None else now_ms
        return {"encryptionKey": base64.b64encode(der).decode(), "timeStamp": self.key_timestamp}

    def _decrypt(self, value: str) -> str | None:
        from cryptography.hazmat.primitives.asymmetric import padding

        if self._key is None:
            return None
        try:
            plain = self._key.decrypt(base64.b64decode(value), padding.PKCS1v15())
            text = base64.b64decode(plain).decode()
        except (ValueError, TypeError):
            return None
        password, sep, stamp = text.rpartition("|")
        return password if sep and stamp == str(self.key_timestamp) else None

    # ------------------------------------------------------------------ checks
    def check_api_key(self, headers: Any) -> None:
        key = headers.get("X-CAP-API-KEY")
        if not key:
            raise ApiError(400, "error.null.api.key")
        if key != self.login.api_key:
            raise ApiError(401, "error.invalid.api.key")

    def create_session(self, body: Any, account_id: str, now: float) -> SimSession:
        if now - self._last_login < self.limits.login_spacing_s:
            raise ApiError(429, "error.too-many.requests")
        self._last_login = now
        if not isinstance(body, dict):
            raise ApiError(400, "error.invalid.details")
        password = body.get("password")
        encrypted = body.get("encryptedPassword", False)
        if encrypted in (True, "true") and isinstance(password, str):
            password = self._decrypt(password)
        if body.get("identifier") != self.login.identifier or password != self.login.password:
            raise ApiError(401, "error.invalid.details")
        s = SimSession(secrets.token_urlsafe(24), secrets.token_urlsafe(24), account_id, now, now)
        self.sessions[s.cst] = s
        return s

    def session_for(self, cst: str | None, xst: str | None, now: float) -> SimSession:
        if not cst or not xst:
            raise ApiError(400, "error.null.client.token")
        s = self.sessions.get(cst)
        if s is None and cst in self.aliases and self.aliases[cst][0] == xst:
            s = self.aliases[cst][1]  # rotated tokens: the old pair still works for a grace period
            xst = s.xst
        if s is None or s.xst != xst or not s.valid:
            raise ApiError(401, "error.invalid.session.token")
        if now - s.last_used > self.idle_s or (
            self.max_age_s is not None and now - s.created > self.max_age_s
        ):
            s.valid = False
            raise ApiError(401, "error.invalid.session.token")
        s.last_used = now
        return s

    def peek(self, cst: str | None, xst: str | None) -> SimSession | None:
        """The live session these tokens name (also through a rotation alias), else None; no side
        effects (no expiry check, no use recorded): for stamping an answer's headers."""
        s = self.sessions.get(cst or "")
        if s is None and cst in self.aliases and self.aliases[cst][0] == xst:
            return self.aliases[cst][1] if self.aliases[cst][1].valid else None
        return s if s is not None and s.xst == xst and s.valid else None

    def rotate_all(self) -> None:
        """Issue new tokens to every session (the answer carries them); old ones stay usable for now."""
        for s in list(self.sessions.values()):
            self.aliases[s.cst] = (s.xst, s)
            del self.sessions[s.cst]
            s.cst, s.xst = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
            self.sessions[s.cst] = s

    def invalidate_all(self) -> None:
        for s in self.sessions.values():
            s.valid = False

    def check_rate(self, now: float, *, order: bool, demo: bool) -> None:
        """General window for every request, plus order spacing and the demo hourly cap for orders."""
        lim = self.limits
        while self._general and now - self._general[0] >= lim.window_s:
            self._general.popleft()
        if len(self._general) >= lim.requests_per_window:
            raise ApiError(429, "error.too-many.requests")
        if order:
            if now - self._last_order < lim.order_spacing_s:
                raise ApiError(429, "error.too-many.requests")
            while self._hourly and now - self._hourly[0] >= lim.hour_s:
                self._hourly.popleft()
            if demo and len(self._hourly) >= lim.demo_orders_per_hour:
                raise ApiError(429, "error.too-many.requests")
            self._last_order = now
            self._hourly.append(now)
        self._general.append(now)
