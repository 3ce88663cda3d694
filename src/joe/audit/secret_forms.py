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

Removing layout is context-free for single characters (whitespace, NUL, zero-width) but not for
escape sequences: ``"\\x1b[" + "Secret"`` reads as the CSI sequence ``\\x1b[S`` followed by ``ecret``,
and ``"\\\\" + "n0pe"`` as an escaped line break followed by ``0pe``. So matching runs in layers:

1. over the text without single-character layout (`LAYOUT_CHARS`) — whatever precedes or follows a
   form, this view holds it intact, so every form present verbatim (or wrapped by whitespace) is
   masked whatever its neighbours are;
2. over the text without any layout (`IGNORABLE`) — a form with escape sequences inside it;
3. as 2, for each form with the edge an escape sequence of the neighbouring text can swallow cut
   off (`edge_trimmed`), accepted only next to such a sequence, which is then masked too.
"""

from __future__ import annotations

import base64
import html
import json
import re
import unicodedata
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator, Sequence

# Single characters a renderer may insert inside a secret; removing them is context-free.
LAYOUT_CHARS = re.compile(r"[\s\x00\u00ad\u200b-\u200d\u2060\ufeff]+")
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


# Text that, placed just before a form, can open an escape sequence that swallows the form's first
# characters ("\x1b[" + "Secret" -> CSI "\x1b[S"); the characters that, inside a form, can open one
# that swallows its last characters together with the following text ("...\\" + "n").
_EDGE_OPENERS = ("\x1b", "\x1b[", "\x1b[ ", "\x1b]", "\\", "%", "%0", "%2")
_ESCAPE_STARTS = frozenset("\x1b\\%")
# How far from a form's end an escape sequence opened inside it may start (an unfinished CSI).
_MAX_TAIL = 16


def edge_trimmed(form: str) -> set[str]:
    """`form` with a leading and/or trailing part an escape sequence could swallow cut off.

    Leading: for each opener in `_EDGE_OPENERS`, what `IGNORABLE` consumes of `form` after it.
    Trailing: the form cut at each escape-opening character in its last `_MAX_TAIL` characters.
    Returns only proper cuts (never `form` itself), possibly empty.
    """
    heads = {0}
    for opener in _EDGE_OPENERS:
        m = IGNORABLE.match(opener + form)
        if m and m.end() > len(opener):
            heads.add(min(m.end() - len(opener), len(form)))
    tails = {len(form)} | {
        i for i in range(max(1, len(form) - _MAX_TAIL), len(form)) if form[i] in _ESCAPE_STARTS
    }
    return {form[h:t] for h in heads for t in tails if (h, t) != (0, len(form)) and t > h}


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
    # The UTF-8 bytes read as Latin-1: composed with "repr" this is repr(bytes) (b'p\\xc3\\xa4ss'),
    # with "url" the percent-encoding of the bytes.
    # (composed and decomposed: repr(bytes) of a macOS path is NFD's bytes)
    "utf8_bytes": lambda v: {
        n.encode("utf-8", "surrogatepass").decode("latin-1")
        for n in (v, unicodedata.normalize("NFC", v), unicodedata.normalize("NFD", v))
    },
    # Unicode normal forms: a path from macOS (HFS+/APFS keep names decomposed, NFD), text from a
    # system that composes (NFC) or folds compatibility characters (NFKC/NFKD: "ﬁ" -> "fi").
    "unicode_nf": lambda v: {unicodedata.normalize(f, v) for f in ("NFC", "NFD", "NFKC", "NFKD")},
}
_CASE_ENCODERS = ("upper", "lower", "casefold")  # one form each (truncated_forms takes .pop())


def secret_forms(value: str, depth: int = 2) -> set[str]:
    """`value` and every composition of up to `depth` `ENCODERS` applied to it (layout kept)."""
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
    # layout-free form is shorter. Forms are returned as generated: `LayoutBlindMatcher` strips
    # each layer's layout itself.
    return {f for f in out if len(f) >= MIN_FORM_LENGTH and strip_layout(f).strip("*")}


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


def _folded(word: str) -> str:
    """`word` with each letter folded to lower case where that keeps it one character (see `_fold`)."""
    return word.lower() if word.isascii() else "".join(_fold(ch) for ch in word)


def trie_pattern(words: Iterable[str]) -> str:
    """One regular expression matching any of `words`, longest first, as a prefix trie.

    An alternation of thousands of literals is tried one by one at every position; a trie shares
    their prefixes, so matching costs about one comparison per character. Letters are folded to
    lower case (compile with ``re.IGNORECASE``).
    """
    trie: dict[str, dict] = {}  # type: ignore[type-arg]
    for w in words:
        node = trie
        for ch in _folded(w):
            node = node.setdefault(ch, {})
        node[""] = {}

    def build(node: dict) -> str:  # type: ignore[type-arg]
        alts = []
        for ch in sorted(k for k in node if k):
            run, child = [ch], node[ch]
            while len(child) == 1 and "" not in child:  # a chain without branches: one literal
                ((c2, child),) = child.items()
                run.append(c2)
            alts.append(re.escape("".join(run)) + build(child))
        if not alts:
            return ""
        body = alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"
        return f"(?:{body})?" if "" in node else body

    return build(trie)


class _View:
    """`text` with the parts `layout` matches removed, and the way back to positions in `text`."""

    def __init__(self, text: str, layout: re.Pattern[str]) -> None:
        kept: list[str] = []
        self.orig_starts: list[int] = []
        self.view_starts: list[int] = []
        # For each kept run: the span in `text` of the layout just before it / just after it, if any.
        self.gap_before: list[tuple[int, int] | None] = []
        self.gap_after: list[tuple[int, int] | None] = []
        pos = view = 0
        prev_gap: tuple[int, int] | None = None
        for m in layout.finditer(text):
            if m.start() > pos:
                kept.append(text[pos : m.start()])
                self.orig_starts.append(pos)
                self.view_starts.append(view)
                self.gap_before.append(prev_gap)
                self.gap_after.append(m.span())
                view += m.start() - pos
            elif self.gap_after:  # two layout matches back to back: one gap
                last = self.gap_after[-1]
                self.gap_after[-1] = (last[0] if last else m.start(), m.end())
            prev_gap = m.span() if prev_gap is None or prev_gap[1] != m.start() else (prev_gap[0], m.end())
            pos = m.end()
        if pos < len(text):
            kept.append(text[pos:])
            self.orig_starts.append(pos)
            self.view_starts.append(view)
            self.gap_before.append(prev_gap)
            self.gap_after.append(None)
        self.flat = "".join(kept)

    def run_of(self, i: int) -> int:
        return bisect_right(self.view_starts, i) - 1

    def to_orig(self, i: int) -> int:
        k = self.run_of(i)
        return self.orig_starts[k] + (i - self.view_starts[k])


def _is_escape(text: str, span: tuple[int, int] | None) -> bool:
    """True when `span` of `text` holds an escape sequence (not only single-character layout)."""
    return span is not None and bool(LAYOUT_CHARS.sub("", text[span[0] : span[1]]))


class LayoutBlindMatcher:
    """Masks any of a set of strings in text, ignoring layout inside a match (see the module doc).

    Only layer 1's pattern is compiled up front; layers 2 and 3 are compiled the first time a text
    holds an escape-sequence opener (most texts never do, and compiling is most of the build cost).
    Several matchers can mask together (`sub_union`): the spans each finds are unioned per layer.
    """

    def __init__(self, words: Iterable[str]) -> None:
        self.words = frozenset(words)
        plain = {LAYOUT_CHARS.sub("", w) for w in self.words} - {""}
        self.plain = self._compile(plain)
        self._escaped: tuple[re.Pattern[str] | None, re.Pattern[str] | None] | None = None

    def escaped_layers(self) -> tuple[re.Pattern[str] | None, re.Pattern[str] | None]:
        """Layers 2 and 3: the forms without any layout, and their edge-trimmed cuts (built once)."""
        if self._escaped is None:
            stripped = {strip_layout(w) for w in self.words}
            stripped.discard("")
            # A cut form counts only next to an escape sequence, but must still be a form's length.
            trimmed = {
                t
                for w in self.words
                for t in (strip_layout(c) for c in edge_trimmed(w))
                if len(t) >= MIN_FORM_LENGTH
            } - stripped
            self._escaped = (self._compile(stripped), self._compile(trimmed))
        return self._escaped

    @property
    def pattern(self) -> re.Pattern[str] | None:
        return self.escaped_layers()[0]

    @property
    def trimmed(self) -> re.Pattern[str] | None:
        return self.escaped_layers()[1]

    @staticmethod
    def _compile(words: set[str]) -> re.Pattern[str] | None:
        return re.compile(trie_pattern(words), re.IGNORECASE) if words else None

    def sub(self, text: str, mask: str) -> str:
        """`text` with every match (over its original span, inserted layout included) replaced by `mask`."""
        return sub_union((self,), text, mask)


def sub_union(matchers: Sequence[LayoutBlindMatcher], text: str, mask: str) -> str:
    """`text` with every match of any of `matchers` replaced by `mask`, layer by layer.

    Each layer's view of the text is built once; every matcher reports its longest match at every
    position where one starts (overlapping ones included, see `_layer_spans`), and the union of
    those spans is masked. So several matchers mask at least what one matcher built from all their
    words masks on each layer: that one's matches are each some word's longest match at its start.
    """
    if not text or not matchers:
        return text
    text = _sub(text, mask, [m.plain for m in matchers], LAYOUT_CHARS, edges=False)
    if not _ESCAPE_STARTS.intersection(text):
        return text  # no escape sequence: layers 2 and 3 see what layer 1 saw
    layers = [m.escaped_layers() for m in matchers]
    text = _sub(text, mask, [p for p, _ in layers], IGNORABLE, edges=False)
    return _sub(text, mask, [t for _, t in layers], IGNORABLE, edges=True)


def _matches(pattern: re.Pattern[str], flat: str) -> Iterator[re.Match[str]]:
    """`pattern`'s longest match at every position where one starts (overlapping; empty ones skipped).

    ``finditer`` would resume after a match and miss a form starting inside it; a union of several
    matchers must not, or it could miss what one combined matcher finds.
    """
    pos = 0
    while (m := pattern.search(flat, pos)) is not None:
        if m.end() > m.start():
            yield m
        pos = m.start() + 1


def layer_spans(
    text: str, patterns: Sequence[re.Pattern[str] | None], layout: re.Pattern[str], *, edges: bool
) -> list[tuple[int, int]]:
    """One layer: the spans of `text` (sorted, overlapping ones merged) where any of `patterns`
    matches `text` without `layout`. With `edges`, a match counts only when an escape sequence
    touches it, and its span grows over that sequence."""
    live = [p for p in patterns if p is not None]
    if not live:
        return []
    view = _View(text, layout)
    spans: list[tuple[int, int]] = []
    for pattern in live:
        for m in _matches(pattern, view.flat):
            start, end = view.to_orig(m.start()), view.to_orig(m.end() - 1) + 1
            if edges:
                first, last = view.run_of(m.start()), view.run_of(m.end() - 1)
                before = view.gap_before[first] if m.start() == view.view_starts[first] else None
                run_end = view.view_starts[last + 1] if last + 1 < len(view.view_starts) else len(view.flat)
                after = view.gap_after[last] if m.end() == run_end else None
                hit_before, hit_after = _is_escape(text, before), _is_escape(text, after)
                if not (hit_before or hit_after):
                    continue
                # Grow over the escape sequence, not over the whitespace around it.
                if hit_before and before is not None:
                    gap = text[before[0] : before[1]]
                    start = before[0] + len(gap) - len(gap.lstrip())
                if hit_after and after is not None:
                    gap = text[after[0] : after[1]]
                    end = after[1] - (len(gap) - len(gap.rstrip()))
            spans.append((start, end))
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start < merged[-1][1]:  # overlapping (touching spans stay two masks)
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _sub(
    text: str, mask: str, patterns: Sequence[re.Pattern[str] | None], layout: re.Pattern[str], *, edges: bool
) -> str:
    """One layer: `text` with the `layer_spans` replaced by `mask`."""
    spans = layer_spans(text, patterns, layout, edges=edges)
    if not spans:
        return text
    out: list[str] = []
    last_end = 0
    for start, end in spans:
        out.append(text[last_end:start])
        out.append(mask)
        last_end = end
    out.append(text[last_end:])
    return "".join(out)
