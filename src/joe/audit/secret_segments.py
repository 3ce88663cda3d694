"""The registered secrets' matchers: one segment per registration, merged log-structured.

Building a `LayoutBlindMatcher` costs time in proportion to the forms it holds (a secret has a few
hundred, see `joe.audit.secret_forms`). Rebuilding one matcher of every form at each registration made
each Capital login (a new CST and X-SECURITY-TOKEN) cost more than the last: quadratic time and memory
that grows for as long as a daemon keeps logging in. Instead:

* each registration becomes a segment with its own matcher (built lazily, on the first text to mask);
* **permanent** secrets (API keys, passwords, bot tokens, env values) are kept for the process's life;
  their segments merge log-structured — a new segment is merged into the previous one while that one
  holds at most `MERGE_RATIO` times its forms — so there are O(log n) of them and each form is rebuilt
  O(log n) times;
* **rotating** secrets (a broker's session tokens, registered with a ``slot`` name) keep a segment each,
  only for the last `SESSION_TOKENS_KEPT` values of their slot: the current token and the ones just
  before it stay masked (a line about the rotation may still quote the old one), an older one drops out.
  The broker invalidated it when it issued its successor, and every line written while it was live was
  masked then. Memory and matching cost stay bounded however long the process runs.

Masking runs every segment over the same layer view and masks the union of their spans
(`joe.audit.secret_forms.sub_union`), which covers at least what one matcher of all the forms covers.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable

from joe.audit.secret_forms import LayoutBlindMatcher

# How many values of one rotating slot (e.g. "capital.cst") stay masked: the current one and 3 before it.
SESSION_TOKENS_KEPT = 4
# A permanent segment absorbs the next one while it holds at most this many times the next one's forms.
MERGE_RATIO = 2


class _Segment:
    """The forms of one registration (or of merged ones) and their matcher, built on first use."""

    __slots__ = ("_matcher", "forms")

    def __init__(self, forms: Iterable[str]) -> None:
        self.forms = frozenset(forms)
        self._matcher: LayoutBlindMatcher | None = None

    def matcher(self) -> LayoutBlindMatcher:
        if self._matcher is None:
            self._matcher = LayoutBlindMatcher(self.forms)
        return self._matcher


class SecretSegments:
    """Thread-safe set of secret forms with incremental matchers (see the module doc)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._permanent: list[_Segment] = []
        self._rotating: dict[str, deque[_Segment]] = {}
        self._all: frozenset[str] = frozenset()
        self._matchers: tuple[LayoutBlindMatcher, ...] | None = ()

    def add(self, forms: Iterable[str], slot: str | None = None) -> bool:
        """Register `forms` (permanent, or the newest value of rotating `slot`); False if all were known."""
        new = frozenset(forms)
        with self._lock:
            if not new or new <= self._all:
                return False
            if slot is None:
                self._permanent.append(_Segment(new))
                while len(self._permanent) >= 2 and len(self._permanent[-2].forms) <= MERGE_RATIO * len(
                    self._permanent[-1].forms
                ):
                    last = self._permanent.pop()
                    self._permanent[-1] = _Segment(self._permanent[-1].forms | last.forms)
            else:
                kept = self._rotating.setdefault(slot, deque(maxlen=SESSION_TOKENS_KEPT))
                kept.append(_Segment(new))
            self._changed()
            return True

    def clear(self) -> None:
        """Forget every secret (tests only)."""
        with self._lock:
            self._permanent.clear()
            self._rotating.clear()
            self._changed()

    def _changed(self) -> None:
        segments = self._segments()
        self._all = frozenset().union(*(s.forms for s in segments))
        self._matchers = None if segments else ()

    def _segments(self) -> list[_Segment]:
        return self._permanent + [s for kept in self._rotating.values() for s in kept]

    def matchers(self) -> tuple[LayoutBlindMatcher, ...]:
        """Every segment's matcher (built now where not yet built); empty when nothing is registered."""
        matchers = self._matchers
        if matchers is None:
            with self._lock:
                if self._matchers is None:
                    self._matchers = tuple(s.matcher() for s in self._segments())
                matchers = self._matchers
        return matchers

    def form_count(self) -> int:
        """How many distinct forms are registered."""
        return len(self._all)

    def segment_count(self) -> int:
        """How many matchers mask a text (permanent segments plus kept rotating values)."""
        with self._lock:
            return len(self._segments())
