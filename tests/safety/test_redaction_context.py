"""A registered secret is masked whatever surrounds it (#11 review: ``"\\x1b@" + secret`` leaked).

The bug's kind: removing layout (ANSI escapes, escaped line breaks) from the text before matching is
context-dependent — an escape opened by the text just before a secret (``\\x1b[``, ``\\\\``, ``%``)
swallows the secret's first characters, so the layout-free view no longer held the secret. These
properties put arbitrary text, including control characters and dangling escape openers, on both sides
of the secret in each of its encoded forms (written here independently of `joe.audit.secret_forms`),
verbatim and with a console's layout inserted inside, and check no form survives.

CI runs hypothesis derandomized; run locally with random seeds (the default outside CI) to explore
(each example compiles a matcher, so the suite runs 150 of each).
"""

from __future__ import annotations

import base64
import json
import re
import unicodedata
from collections.abc import Callable, Iterator
from urllib.parse import quote, quote_plus

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from joe.audit.redaction import MASK, clear_secrets, redact_text, register_secret


@pytest.fixture(autouse=True)
def _clean_registry() -> Iterator[None]:
    clear_secrets()
    yield
    clear_secrets()


# What may sit next to a secret: anything, weighted towards the openers of escape sequences.
_OPENERS = ["\x1b", "\x1b[", "\x1b[3", "\x1b[ ", "\x1b]", "\x1b]8;;", "\\", "%", "%0", "%2", "\x00", "\u200b"]
_ANY = st.characters(blacklist_categories=("Cs",))
context = st.lists(st.one_of(st.text(_ANY, max_size=6), st.sampled_from(_OPENERS)), max_size=5).map("".join)

# Secrets: printable ASCII incl. quotes, backslash, %, @, [ and digits (the characters escapes eat),
# plus non-ASCII letters, emoji and CJK.
_SECRET_CHARS = st.one_of(
    st.sampled_from("abcXYZ0129@[]\\%\"'`~!#$&()+,-./:;<=>?^_{|} nmrtAD"),
    st.characters(whitelist_categories=("Lu", "Ll", "Lo", "Nd", "So"), max_codepoint=0x1F64F),
)
secrets_st = st.text(_SECRET_CHARS, min_size=6, max_size=24).filter(
    lambda s: s == s.strip() and len(s) >= 6 and s.strip("*") == s
)


def _b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


# Encoders written independently of the production list.
ENCODE: dict[str, Callable[[str], str]] = {
    "verbatim": lambda s: s,
    "upper": str.upper,
    "json": lambda s: json.dumps(s)[1:-1],
    "json_utf8": lambda s: json.dumps(s, ensure_ascii=False)[1:-1],
    "json_in_json": lambda s: json.dumps(json.dumps(s))[1:-1],
    "repr": lambda s: repr(s)[1:-1],
    "repr_bytes": lambda s: repr(s.encode())[2:-1],
    "url": lambda s: quote(s, safe=""),
    "url_plus": quote_plus,
    "base64": _b64,
    "hex": lambda s: s.encode().hex(),
    # Unicode normal forms (#11 review: a macOS path keeps "é" decomposed, NFD, and leaked).
    "nfd": lambda s: unicodedata.normalize("NFD", s),
    "nfkd": lambda s: unicodedata.normalize("NFKD", s),
    "json_nfd": lambda s: json.dumps(unicodedata.normalize("NFD", s))[1:-1],
    "repr_bytes_nfd": lambda s: repr(unicodedata.normalize("NFD", s).encode())[2:-1],
}


@pytest.mark.timeout(900)  # each example compiles a secret's matcher (~0.1-0.4 s)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(prefix=context, secret=secrets_st, suffix=context, how=st.sampled_from(sorted(ENCODE)))
@example(prefix="\x1b", secret="@Sup3rSecret", suffix="", how="verbatim")  # the reported case
@example(prefix="\x1b[", secret="Sup3rSecret", suffix="", how="verbatim")  # CSI eats 'S'
@example(prefix="\x1b[", secret="123456789:AAHbot", suffix="", how="verbatim")  # eats up to 'A'
@example(prefix="\\", secret="n0pe-secret", suffix="", how="verbatim")  # escaped line break eats 'n'
@example(prefix="%", secret="0Asecret-val", suffix="", how="verbatim")
@example(prefix="", secret="secret-val\\", suffix="n", how="verbatim")  # the end eaten
@example(prefix="\x1b]8;;", secret="https://x/secret", suffix="\x07", how="verbatim")  # OSC link
@example(prefix="", secret="pässwörd-1", suffix="", how="repr_bytes")
@example(prefix="./data/", secret="Sup3rSécret", suffix="/x.csv", how="nfd")  # a macOS path
@example(prefix="", secret="Sup3rSécret", suffix="", how="repr_bytes_nfd")
@example(prefix="", secret="00000\uf900", suffix="", how="repr_bytes")  # NFC changes U+F900 itself
def test_any_form_is_masked_whatever_surrounds_it(prefix: str, secret: str, suffix: str, how: str) -> None:
    clear_secrets()
    register_secret(secret)
    form = ENCODE[how](secret)
    out = redact_text(prefix + form + suffix)
    assert form not in out
    assert form.lower() not in out.lower()
    assert MASK in out


# Layout a console or encoder inserts inside a value it wraps.
_INSIDE = ["\n", "\n    ", "\r\n\t", "\x1b[0m\n\x1b[31m", "\x1b[1m", "\\n", "\\n  ", "%0A", "\x00", "\u200b"]


def _visible(text: str) -> str:
    """What a reader pieces together: without whitespace, NUL, zero-width, ANSI and escaped breaks."""
    return re.sub(r"\s|\x00|\u200b|\x1b\[[0-?]*[ -/]*[@-~]|\\n|%0A", "", text).casefold()


@pytest.mark.timeout(900)  # each example compiles a secret's matcher (~0.1-0.4 s)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    prefix=context,
    secret=secrets_st.filter(lambda s: not re.search(r"[\s\\%]", s)),
    suffix=context,
    cut=st.integers(min_value=1, max_value=23),
    inside=st.sampled_from(_INSIDE),
)
@example(prefix="\x1b", secret="@Sup3rSecret", suffix="", cut=5, inside="\n    ")
@example(prefix="\x1b[", secret="Sup3rSecret", suffix="", cut=4, inside="\x1b[0m\n\x1b[31m")
@example(prefix="\\", secret="nSup3rSecret", suffix="", cut=6, inside="\\n  ")
def test_a_wrapped_secret_is_masked_whatever_surrounds_it(
    prefix: str, secret: str, suffix: str, cut: int, inside: str
) -> None:
    clear_secrets()
    register_secret(secret)
    cut = min(cut, len(secret) - 1)
    out = redact_text(prefix + secret[:cut] + inside + secret[cut:] + suffix)
    assert _visible(secret) not in _visible(out)
    assert secret[:cut] + inside + secret[cut:] not in out
    assert MASK in out
