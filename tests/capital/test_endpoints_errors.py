"""Endpoint resolution (demo unless explicitly live) and errorCode → typed exception mapping."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from joe.brokers.base import BrokerError, BrokerUnavailable
from joe.brokers.capital.endpoints import (
    DEMO_API_URL,
    LIVE_API_URL,
    normalise_stream_url,
    resolve_endpoints,
)
from joe.brokers.capital.errors import (
    CapitalAuthError,
    CapitalError,
    CapitalTransient,
    InvalidRequest,
    MarketClosed,
    NotFound,
    RateLimited,
    SessionExpired,
    is_session_error,
    map_error,
    split_code,
)


@pytest.mark.parametrize(
    ("demo", "mode", "expected_url", "live"),
    [
        (True, "paper", DEMO_API_URL, False),
        (True, "live", DEMO_API_URL, False),
        (False, "paper", DEMO_API_URL, False),
        (False, "shadow", DEMO_API_URL, False),
        (False, "", DEMO_API_URL, False),
        (False, "LIVE ", LIVE_API_URL, True),
        (False, "live", LIVE_API_URL, True),
    ],
)
def test_live_host_only_when_not_demo_and_live(demo: bool, mode: str, expected_url: str, live: bool) -> None:
    ep = resolve_endpoints(demo, mode, None, None)
    assert ep.api_url == expected_url
    assert ep.live is live
    assert ep.stream_url is None  # taken from the login's streamingHost


def test_overrides_win_and_are_never_reported_live() -> None:
    ep = resolve_endpoints(False, "live", "http://127.0.0.1:9/", "ws://127.0.0.1:9/")
    assert ep.api_url == "http://127.0.0.1:9"
    assert ep.stream_url == "ws://127.0.0.1:9/connect"
    assert ep.live is False
    assert resolve_endpoints(True, "paper", "  ", None).api_url == DEMO_API_URL


@given(st.booleans(), st.text(max_size=8))
def test_live_url_requires_both_conditions(demo: bool, mode: str) -> None:
    ep = resolve_endpoints(demo, mode)
    assert (ep.api_url == LIVE_API_URL) == ((not demo) and mode.strip().lower() == "live")


@pytest.mark.parametrize(
    ("host", "url"),
    [
        (
            "wss://api-streaming-capital.backend-capital.com/",
            "wss://api-streaming-capital.backend-capital.com/connect",
        ),
        ("wss://h.example", "wss://h.example/connect"),
        ("wss://h.example/connect", "wss://h.example/connect"),
        ("ws://127.0.0.1:5/connect/", "ws://127.0.0.1:5/connect"),
    ],
)
def test_stream_url_normalised(host: str, url: str) -> None:
    assert normalise_stream_url(host) == url


def _body(code: str) -> bytes:
    return json.dumps({"errorCode": code}).encode()


@pytest.mark.parametrize(
    ("status", "code", "cls"),
    [
        (400, "error.null.api.key", CapitalAuthError),
        (401, "error.invalid.details", CapitalAuthError),
        (401, "error.invalid.api.key", CapitalAuthError),
        (429, "error.too-many.requests", RateLimited),
        (400, "error.invalid.accountId", InvalidRequest),
        (401, "error.invalid.session.token", SessionExpired),
        (400, "error.null.client.token", SessionExpired),
        (403, "error.security.session-expired", SessionExpired),
        (400, "error.security.client-token-missing", SessionExpired),
        (404, "error.not-found.dealId", NotFound),
        (404, "error.not-found.epic", NotFound),
        (400, "error.invalid.stoploss.minvalue: 17.146", InvalidRequest),
        (400, "Rejected. BTCUSD is currently closed. Timetable in place: UTC", MarketClosed),
        (500, "java.util.concurrent.TimeoutException", CapitalTransient),
        (503, "error.service", CapitalTransient),
    ],
)
def test_error_codes_map_to_types(status: int, code: str, cls: type[CapitalError]) -> None:
    err = map_error(status, _body(code), path="/x")
    assert type(err) is cls
    assert err.status == status
    assert isinstance(err, BrokerError)


def test_value_after_first_colon_is_split() -> None:
    err = map_error(400, _body("error.invalid.stoploss.minvalue: 17.146"))
    assert (err.code, err.value) == ("error.invalid.stoploss.minvalue", "17.146")
    assert split_code("a: b: c") == ("a", "b: c")
    assert split_code("plain") == ("plain", "")


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (504, b"<html><title>504 Gateway Time-out</title></html>"),
        (502, b""),
        (500, b"{"),
        (500, b"[1]"),
        (400, b"not json"),
        (200, b'{"errorCode": 5}'),
    ],
)
def test_non_json_and_undocumented_bodies_are_transient(status: int, body: bytes) -> None:
    err = map_error(status, body)
    assert isinstance(err, CapitalTransient)
    assert isinstance(err, BrokerUnavailable)


def test_bodyless_401_and_429_keep_their_meaning() -> None:
    assert isinstance(map_error(401, b""), SessionExpired)
    assert isinstance(map_error(429, b""), RateLimited)
    assert isinstance(map_error(404, b""), NotFound)


def test_session_rule_never_relogs_on_login_errors() -> None:
    assert not is_session_error(401, "error.invalid.details")
    assert not is_session_error(400, "error.null.api.key")
    assert not is_session_error(400, "error.invalid.accountId")
    assert is_session_error(401, "")
    assert is_session_error(None, "error.invalid.session.token")


@given(st.integers(min_value=100, max_value=599), st.one_of(st.binary(max_size=64), st.text(max_size=64)))
def test_map_error_total_on_garbage(status: int, body: bytes | str) -> None:
    err = map_error(status, body)
    assert isinstance(err, CapitalError)
    if status >= 500:
        assert isinstance(err, CapitalTransient)


@given(st.text(min_size=1, max_size=40).filter(lambda s: ":" not in s), st.text(max_size=20))
def test_split_code_roundtrip(code: str, value: str) -> None:
    c, v = split_code(f"{code}: {value}")
    assert c == code.strip()
    assert v == value.strip()
