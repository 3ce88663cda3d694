"""Redaction catches a secret in the forms it takes elsewhere (issue 11), and console output is redacted."""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from joe.audit.log import AuditLog
from joe.audit.redaction import MASK, clear_secrets, redact_text, register_secret
from joe.audit.streams import RedactingStream
from joe.core.demo_credentials import is_public_demo_value


@pytest.fixture(autouse=True)
def _clean_registry() -> Iterator[None]:
    clear_secrets()
    yield
    clear_secrets()


@pytest.mark.parametrize(
    "secret",
    ['pa"ss-word-123', "back\\slash-key-99", "pässwörd-ünïcode-77", "q\"u\\o'te\u00e9-mix-1"],
)
def test_secret_with_quote_backslash_or_non_ascii_inside_json_text(secret: str, tmp_path: Path) -> None:
    register_secret(secret)
    for ascii_only in (True, False):
        body = json.dumps({"error": {"detail": f"login failed for {secret}"}}, ensure_ascii=ascii_only)
        text = f"HTTP 401 body={body}"
        out = redact_text(text)
        assert MASK in out
        assert json.dumps(secret, ensure_ascii=ascii_only)[1:-1] not in out
    log = AuditLog(tmp_path, fsync=False)
    log.record("e", {"body": json.dumps({"p": secret}), "raw": secret})
    data = next(tmp_path.glob("audit-*.jsonl")).read_text()
    assert secret not in data and json.dumps(secret)[1:-1] not in data


def test_basic_credentials_are_masked_even_when_unregistered() -> None:
    creds = base64.b64encode(b"alice:never-registered-pw").decode()
    out = redact_text(f"Authorization: Basic {creds}")
    assert creds not in out and "Basic ***" in out


@settings(max_examples=50, deadline=None)
@given(
    secret=st.text(
        alphabet=st.characters(min_codepoint=33, max_codepoint=0x2FF), min_size=8, max_size=40
    ).filter(lambda s: s.strip("*") == s),
    prefix=st.binary(max_size=7),
    suffix=st.binary(max_size=7),
)
def test_base64_of_a_key_alone_or_inside_a_blob(secret: str, prefix: bytes, suffix: bytes) -> None:
    clear_secrets()
    register_secret(secret)
    for enc in (base64.b64encode, base64.urlsafe_b64encode):
        alone = enc(secret.encode()).decode()
        assert alone not in redact_text(f"x {alone} y")
        blob = enc(prefix + secret.encode() + suffix).decode()
        out = redact_text(blob)
        # Whatever alignment the key lands on, the characters that encode it alone are gone.
        assert MASK in out
        assert base64.b64decode(blob.replace("-", "+").replace("_", "/")) != out.encode()


@settings(max_examples=100, deadline=None)
@given(
    name=st.sampled_from(
        ["CST", "X-SECURITY-TOKEN", "X-CAP-API-KEY", "Authorization", "Cookie", "Set-Cookie"]
    ),
    case=st.sampled_from([str.upper, str.lower, str.title]),
    value=st.text(
        st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/"), min_size=8
    ),
    as_bytes=st.booleans(),
)
def test_an_unregistered_header_pair_is_masked_by_its_name(
    name: str, case: object, value: str, as_bytes: bool
) -> None:
    """httpcore's DEBUG trace prints headers as (name, value) pairs, e.g. the login answer's
    (b'CST', b'...') before Joe has registered the new token: a pair with a secret-like name is masked
    by its shape; a plain header next to it is kept."""
    key = case(name)  # type: ignore[operator]
    line = "receive_response_headers.complete return_value=(b'HTTP/1.1', 200, b'OK', {pairs!r})"
    # A value the line's own text holds ("complete", "HTTP/1.1") would be found there, not leaked.
    assume(value not in line + " Content-Type application/json")
    # The simulators' published demo values stay visible by design (joe.core.demo_credentials); hypothesis
    # draws constants it finds in the code under test, 'sim-api-key' among them.
    assume(not is_public_demo_value(value))
    headers = [(key, value), ("Content-Type", "application/json")]
    pairs = [(k.encode(), v.encode()) for k, v in headers] if as_bytes else headers
    out = redact_text(line.format(pairs=pairs))
    assert value not in out, out
    assert MASK in out and "application/json" in out


@pytest.mark.parametrize("variant", [str.upper, str.lower, str.swapcase])
def test_a_key_in_another_case_is_still_the_key(variant: object) -> None:
    register_secret("MixedCaseKey-Abc123")
    shown = variant("MixedCaseKey-Abc123")  # type: ignore[operator]
    assert shown not in redact_text(f"key was {shown}!")


def test_redacting_stream_catches_a_secret_split_across_writes() -> None:
    register_secret("Sup3rSecretValue123")
    inner = io.StringIO()
    out = RedactingStream(inner)
    out.write("error: Sup3rSec")
    out.write("retValue123 in path\n")
    out.write("tail Sup3rSecretValue123")
    out.flush()
    assert "Sup3rSecretValue123" not in inner.getvalue() and inner.getvalue().count(MASK) == 2


def test_console_one_line_error_is_redacted(tmp_path: Path) -> None:
    """The issue's reproduction: the secret is part of a bad --source path echoed in the error."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CAPITAL_", "TRADING_", "JOE_"))}
    env.update(CAPITAL_PASSWORD="Sup3rSecretValue123", JOE_DATA_DIR=str(tmp_path / "data"))
    exe = Path(sys.executable).with_name("joe")
    proc = subprocess.run(
        [str(exe), "run", "--once", "--source", "csv:./Sup3rSecretValue123"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode in (1, 2)  # the bad --source is reported in one line
    assert "csv source: *** does not exist" in proc.stderr
    assert "Sup3rSecretValue123" not in proc.stdout + proc.stderr
    for f in (tmp_path / "data").rglob("*"):
        if f.is_file():
            assert b"Sup3rSecretValue123" not in f.read_bytes(), f
