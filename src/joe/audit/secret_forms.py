"""The forms a secret takes once it is embedded elsewhere, and a matcher blind to inserted layout.

A secret rarely leaks verbatim: it is upper-cased by an error message, escaped inside JSON (then
escaped again when that JSON is itself a string field), doubled-backslashed by ``repr()``,
URL-encoded, base64- or hex-encoded, and finally wrapped by a console at 80 columns with the next
line indented. Listing the cases one by one always misses the next one, so the forms are generated:

* `ENCODERS` is a set of single-step encoders (case changes incl. Unicode case folding — ``ß`` upper-
  cases to ``SS`` — and swapped/title case; an arbitrary mix of cases then base64-encoded is not
  covered: there are 2^n of them), JSON escapes with and without ``ensure_ascii``, ``repr``/``ascii``,
  URL quoting, HTML escaping, base64 at each byte alignment, hex, UTF-16 bytes read as Latin-1);
* `secret_forms` applies every encoder and every pair of encoders (``json(json(s))``,
  ``base64(upper(s))``, ``repr(json(s))``...): all compositions up to depth 2.

`LayoutBlindMatcher` then matches those forms while ignoring what a renderer inserts between
characters — whitespace and line breaks with indentation (also escaped: ``\\n``, ``%0A``), NUL bytes,
zero-width characters and ANSI escape sequences — so a secret wrapped across lines by rich, or base64
wrapped at 76 columns, is still one match. A match is masked in the original text over its whole span
(the inserted layout included). Case is ignored (``re.IGNORECASE``; the case encoders add what simple
case folding cannot match).
"""

from __future__ import annotations

import base64
import html
import json
import re
from bisect import bisect_right
from collections.abc import Callable, Iterable

# Characters a renderer may insert inside a secret without changing what a reader sees as "the value".
IGNORABLE = re.compile(
    r"(?:\s|\x00|[\u00ad\u200b-\u200d\u2060\ufeff]"
    r"|\x1b\[[0-?]*[ -/]*[@-~]"  # ANSI CSI (colours, cursor moves)
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)"  # ANSI OSC (hyperlinks, titles)
    r"|\x1b[@-Z\\-_]"
    r"|\\[nrt]|%0[AaDd9]|%20)+"  # a line break escaped by JSON / repr / URL quoting (wrapped base64 in JSON)
)
ELLIPSIS = "\u2026"
MIN_FORM_LENGTH = 4
# A secret cut short by a renderer ("Sup3rSecr…") still shows this many leading characters at most.
MIN_TRUNCATED_PREFIX = 6


def strip_layout(text: str) -> str:
    """`text` without the characters in `IGNORABLE`."""
    return IGNORABLE.sub("", text)


def _base64_forms(v: str) -> set[str]:
    """The base64 characters that encode `v` alone and inside a longer blob, at each byte alignment.

    Inside a blob, `v` starts at byte offset 0, 1 or 2 modulo 3; for each, the characters that
    depend only on `v`'s bytes are the same wherever the blob puts it (RFC 4648 §4 and §5 alphabets).
    """
    raw = v.encode("utf-8", "surrogatepass")
    forms: set[str] = set()
    for k in range(3):
        enc = base64.b64encode(b"\0" * k + raw).decode()
        start, end = -(-8 * k // 6), (8 * (k + len(raw))) // 6
        if k == 0:
            forms.add(enc)
        forms.add(enc[start:end])
    forms |= {f.replace("+", "-").replace("/", "_") for f in forms}
    return {f for f in forms if len(f) >= 2 * MIN_FORM_LENGTH}


_JSON_HEX = re.compile(r"(\\u)([0-9A-Fa-f]{4})")
_REPR_HEX = re.compile(r"(\\x)([0-9A-Fa-f]{2})|(\\u)([0-9A-Fa-f]{4})|(\\U)([0-9A-Fa-f]{8})")
_URL_HEX = re.compile(r"(%)([0-9A-Fa-f]{2})")


def _hex_cases(forms: set[str], rx: re.Pattern[str]) -> set[str]:
    """Each form with its escapes' hex digits (as `rx` finds them) in upper and in lower case.

    ``\\u00e9`` / ``\\u00E9``, ``%c3`` / ``%C3``: matching ignores case anyway; this matters when the
    form is encoded again (base64 of ``%C3%A9`` is not base64 of ``%c3%a9``).
    """

    def recase(upper: bool) -> Callable[[re.Match[str]], str]:
        def sub(m: re.Match[str]) -> str:
            text = m.group(0)
            return (
                text[:2] + (text[2:].upper() if upper else text[2:].lower())
                if text[0] == "\\"
                else (text[:1] + (text[1:].upper() if upper else text[1:].lower()))
            )

        return sub

    out = set(forms)
    for f in forms:
        out.add(rx.sub(recase(True), f))
        out.add(rx.sub(recase(False), f))
    return out


def _json(ascii_only: bool) -> Callable[[str], set[str]]:
    return lambda v: _hex_cases({json.dumps(v, ensure_ascii=ascii_only)[1:-1]}, _JSON_HEX)


def _quote_forms(v: str) -> set[str]:
    from urllib.parse import quote, quote_plus

    return _hex_cases({quote(v, safe=""), quote(v), quote_plus(v)}, _URL_HEX)


def _repr_forms(v: str) -> set[str]:
    """``repr``/``ascii`` of `v` alone and as part of a longer string holding both quote kinds
    (then Python escapes the ``'``): ``v + "'\""`` renders as ``'<v escaped>\\'"'``."""
    return _hex_cases(
        {f(v)[1:-1] for f in (repr, ascii)} | {f(v + "'\"")[1:-4] for f in (repr, ascii)}, _REPR_HEX
    )


def _hex(v: str) -> set[str]:
    h = v.encode("utf-8", "surrogatepass").hex()
    return {h, h.upper()}


def _utf16(v: str) -> set[str]:
    raw = v.encode("utf-16-le", "surrogatepass")
    return {raw.decode("latin-1"), v.encode("utf-16-be", "surrogatepass").decode("latin-1")}


ENCODERS: dict[str, Callable[[str], set[str]]] = {
    "upper": lambda v: {v.upper()},
    "lower": lambda v: {v.lower()},
    "casefold": lambda v: {v.casefold()},
    "swapcase": lambda v: {v.swapcase(), v.title(), v.capitalize()},
    "json": _json(True),
    "json_utf8": _json(False),
    "repr": _repr_forms,
    "url": _quote_forms,
    "html": lambda v: {html.escape(v), html.escape(v, quote=False)},
    "base64": _base64_forms,
    "hex": _hex,
    "utf16": _utf16,
}
_CASE_ENCODERS = ("upper", "lower", "casefold")  # one form each (truncated_forms takes .pop())


def secret_forms(value: str, depth: int = 2) -> set[str]:
    """`value` and every composition of up to `depth` `ENCODERS` applied to it (layout stripped)."""
    level = {value}
    out = set(level)
    for _ in range(depth):
        nxt: set[str] = set()
        for v in level:
            for enc in ENCODERS.values():
                nxt |= enc(v)
        nxt -= out
        out |= nxt
        level = nxt
    # Length is judged before the layout is stripped: "a b *" is a 5-character secret even if its
    # layout-free form is shorter.
    return {s for s in (strip_layout(f) for f in out if len(f) >= MIN_FORM_LENGTH) if s.strip("*")}


def truncated_forms(value: str) -> set[str]:
    """`value` (and its case forms) cut short by an ellipsis: ``Sup3rSecr…`` (rich's overflow)."""
    out: set[str] = set()
    for v in {value} | {enc(value).pop() for enc in (ENCODERS[c] for c in _CASE_ENCODERS)}:
        v = strip_layout(v)
        for n in range(MIN_TRUNCATED_PREFIX, len(v)):
            out.add(v[:n] + ELLIPSIS)
            out.add(v[:n] + "...")
    return out


def _fold(ch: str) -> str:
    low = ch.lower()
    return low if len(low) == 1 else ch


def trie_pattern(words: Iterable[str]) -> str:
    """One regular expression matching any of `words`, longest first, as a prefix trie.

    An alternation of thousands of literals is tried one by one at every position; a trie shares
    their prefixes, so matching costs about one comparison per character. Letters are folded to
    lower case (compile with ``re.IGNORECASE``).
    """
    trie: dict[str, dict] = {}  # type: ignore[type-arg]
    for w in words:
        node = trie
        for ch in w:
            node = node.setdefault(_fold(ch), {})
        node[""] = {}

    def build(node: dict) -> str:  # type: ignore[type-arg]
        alts = []
        for ch in sorted(k for k in node if k):
            run, child = re.escape(ch), node[ch]
            while len(child) == 1 and "" not in child:  # a chain without branches: one literal
                ((c2, child),) = child.items()
                run += re.escape(c2)
            alts.append(run + build(child))
        if not alts:
            return ""
        body = alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"
        return f"(?:{body})?" if "" in node else body

    return build(trie)


class LayoutBlindMatcher:
    """Masks any of a set of strings in text, ignoring `IGNORABLE` characters inside a match."""

    def __init__(self, words: Iterable[str]) -> None:
        stripped = {strip_layout(w) for w in words}
        stripped.discard("")
        self.pattern = re.compile(trie_pattern(stripped), re.IGNORECASE) if stripped else None

    def sub(self, text: str, mask: str) -> str:
        """`text` with every match (over its original span, inserted layout included) replaced by `mask`."""
        if self.pattern is None or not text:
            return text
        # The text without layout, and for each kept run its start in the original and in the view.
        kept: list[str] = []
        orig_starts: list[int] = []
        view_starts: list[int] = []
        pos = view = 0
        for m in IGNORABLE.finditer(text):
            if m.start() > pos:
                kept.append(text[pos : m.start()])
                orig_starts.append(pos)
                view_starts.append(view)
                view += m.start() - pos
            pos = m.end()
        if pos < len(text):
            kept.append(text[pos:])
            orig_starts.append(pos)
            view_starts.append(view)
        flat = "".join(kept)

        def to_orig(i: int) -> int:
            k = bisect_right(view_starts, i) - 1
            return orig_starts[k] + (i - view_starts[k])

        out: list[str] = []
        last = 0
        for m in self.pattern.finditer(flat):
            if m.end() == m.start():
                continue
            start, end = to_orig(m.start()), to_orig(m.end() - 1) + 1
            out.append(text[last:start])
            out.append(mask)
            last = end
        if not out:
            return text
        out.append(text[last:])
        return "".join(out)
