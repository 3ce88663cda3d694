"""Redaction survives what happens to a secret on its way out (review of issue 11, points 1 and 2).

* A console wraps a long line AFTER redaction: the secret split across two lines with indentation
  must still be masked (a property over secret × console width × prefix length, through rich and
  `RedactingStream`, and end to end through the `joe` command).
* A secret re-encoded elsewhere: every composition of up to two encoders from an encoder set written
  here independently of `joe.audit.secret_forms` (case folding, JSON, JSON-in-JSON, repr, URL, base64,
  hex...) must be masked, as a property over random secrets with quotes, backslashes and non-ASCII.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.console import Console

from joe.audit.redaction import MASK, clear_secrets, redact_text, register_secret
from joe.audit.streams import RedactingStream

_WS = re.compile(r"\s+")
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]")


@pytest.fixture(autouse=True)
def _clean_registry() -> Iterator[None]:
    clear_secrets()
    yield
    clear_secrets()


def _visible(text: str) -> str:
    """What a reader can piece together: the text without whitespace and colour codes, case-folded."""
    return _WS.sub("", _ANSI.sub("", text)).casefold()


# Printable characters, incl. quotes, backslashes, non-ASCII letters (ß, ö, CJK), no controls.
_secret_chars = st.characters(
    blacklist_categories=("Cc", "Cs", "Co", "Cn", "Zl", "Zp", "Zs", "Mn", "Me", "Mc", "Cf"),
    max_codepoint=0x9FFF,
)
secrets_st = st.text(_secret_chars, min_size=8, max_size=24).filter(lambda s: s.strip("*") == s)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    secret=secrets_st,
    width=st.integers(min_value=20, max_value=120),
    prefix=st.integers(min_value=0, max_value=150),
    colour=st.booleans(),
)
def test_a_secret_wrapped_by_the_console_is_still_masked(
    secret: str, width: int, prefix: int, colour: bool
) -> None:
    clear_secrets()
    register_secret(secret)
    inner = io.StringIO()
    console = Console(
        file=RedactingStream(inner), width=width, force_terminal=colour, color_system="standard"
    )
    console.print(f"error: csv source: ./{'a' * prefix}{secret} does not exist", markup=False, emoji=False)
    console.print(f"   indented {'b' * (prefix // 2)}{secret.upper()}", markup=False, emoji=False)
    console.file.flush()
    shown = _visible(inner.getvalue())
    assert _visible(secret) not in shown
    assert _visible(secret.upper()) not in shown
    assert "***" in inner.getvalue()


def test_a_secret_broken_by_newline_and_padding_is_masked() -> None:
    register_secret("Sup3rSecretValue123")
    text = "path ./aaaa/Sup3rSecretVa\n                lue123 missing"
    out = redact_text(text)
    assert "Sup3rSecretVa" not in out and "lue123" not in out and MASK in out
    assert out.startswith("path ./aaaa/") and out.endswith(" missing")


def test_a_secret_cut_short_by_an_ellipsis_is_masked() -> None:
    register_secret("Sup3rSecretValue123")
    assert "Sup3rSec" not in redact_text("| Sup3rSecretV… |")
    assert redact_text("| Sup3r… |") == "| Sup3r… |"  # five characters say nothing


@pytest.mark.parametrize("pad", [40, 50, 55, 60, 65, 70])
def test_the_joe_command_masks_a_wrapped_secret(tmp_path: Path, pad: int) -> None:
    """The review's reproduction: a bad path echoed in an error that rich wraps at 80 columns."""
    secret = "Sup3rSecretValue123"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CAPITAL_", "TRADING_", "JOE_"))}
    env.update(CAPITAL_PASSWORD=secret, JOE_DATA_DIR=str(tmp_path / "data"), COLUMNS="80")
    exe = Path(sys.executable).with_name("joe")
    proc = subprocess.run(
        [str(exe), "audit", "verify", "--dir", f"/nonexistent/{'a' * pad}{secret}"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = proc.stdout + proc.stderr
    assert "***" in out, out
    assert _visible(secret) not in _visible(out), out


# --- forms of a secret: every composition of up to two encoders -----------------------------------


def _b64(v: str) -> str:
    return base64.b64encode(v.encode()).decode()


TEST_ENCODERS: dict[str, Callable[[str], str]] = {
    "identity": lambda v: v,
    "upper": str.upper,
    "lower": str.lower,
    "casefold": str.casefold,
    "swapcase": str.swapcase,
    "json": lambda v: json.dumps(v),
    "json_utf8": lambda v: json.dumps(v, ensure_ascii=False),
    "json_upper_hex": lambda v: re.sub(
        r"\\u([0-9a-f]{4})", lambda m: "\\u" + m.group(1).upper(), json.dumps(v)
    ),
    "repr": repr,
    "ascii": ascii,
    "url": lambda v: quote(v, safe=""),
    "url_plus": quote_plus,
    "html": html.escape,
    "base64": _b64,
    "base64_url": lambda v: base64.urlsafe_b64encode(v.encode()).decode(),
    "base64_wrapped": lambda v: "\n".join(_b64(v)[i : i + 8] for i in range(0, len(_b64(v)), 8)),
    "hex": lambda v: v.encode().hex(),
    "hex_upper": lambda v: v.encode().hex().upper(),
    "basic_auth": lambda v: "Basic " + _b64(f"me:{v}"),
}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(secret=secrets_st.filter(lambda s: s.strip() == s), ctx=st.sampled_from(["", "x=", "{'a': ", "pre "]))
def test_every_two_step_encoding_of_a_secret_is_masked(secret: str, ctx: str) -> None:
    clear_secrets()
    register_secret(secret)
    leaks = []
    for n1, e1 in TEST_ENCODERS.items():
        for n2, e2 in TEST_ENCODERS.items():
            if n1 == "base64_wrapped" and n2.startswith(("base64", "hex", "basic")):
                continue  # the line breaks are then part of the encoded bytes: another value
            form = e2(e1(secret))
            out = redact_text(f"{ctx}{form} end")
            if _visible(form) in _visible(out):
                leaks.append(f"{n2}({n1}(secret)) = {form!r} -> {out!r}")
    assert not leaks, "\n".join(leaks[:10])


@pytest.mark.parametrize("secret", ['pa"ss\\wörd-Secret1', "straßeSecret99", "Sup3rSecretValue123"])
def test_the_reviewers_forms(secret: str) -> None:
    """The review's list, by name: casefold, upper-hex escapes, repr, JSON-in-JSON, base64(upper), hex."""
    register_secret(secret)
    forms = {
        "casefold upper": secret.upper(),
        "json upper": json.dumps({"x": secret.upper()}),
        "json in json": json.dumps(json.dumps({"x": secret})),
        "repr": repr({"x": secret}),
        "base64 of upper": _b64(secret.upper()),
        "hex": secret.encode().hex(),
        "base64 wrapped": "\n".join(_b64(secret)[i : i + 8] for i in range(0, 40, 8)),
        "utf-16": secret.encode("utf-16-le").decode("latin-1"),
        "url twice": quote(quote(secret, safe=""), safe=""),
    }
    for name, text in forms.items():
        out = redact_text(text)
        assert MASK in out, name
