"""Per-instrument trigger levels: which resting stops and targets a price has crossed.

Every level is one of two kinds, whatever the position's direction:
- *lower* levels fire when the price falls to or below them (a long's stop, a short's target);
- *upper* levels fire when the price rises to or above them (a long's target, a short's stop).

Each kind is a heap (max-heap for lower, min-heap for upper), so the only level a price can cross
first is the top: a whole batch of quotes is checked against two numbers with one vectorised
comparison, and only a crossing costs Python work. Removal is lazy: an entry is live while its token
is the one armed for that slot (re-arming a moved stop just pushes a new entry). Dead entries leave when
they reach the top, or in a rebuild when they are more than 3/4 of a heap of over 64, looked for
whenever the heaps hold 64 entries more than at the last look.
"""

from __future__ import annotations

import heapq
import math

_push = heapq.heappush


class LevelBook:
    """The armed lower and upper levels of one instrument. Slots are the monitor's position slots."""

    __slots__ = ("_check_at", "_lower", "_lower_armed", "_token", "_upper", "_upper_armed")

    def __init__(self) -> None:
        self._lower: list[tuple[float, int, int]] = []  # (-level, token, slot)
        self._upper: list[tuple[float, int, int]] = []  # (level, token, slot)
        self._lower_armed: dict[int, int] = {}  # slot -> token
        self._upper_armed: dict[int, int] = {}
        self._token = 0
        self._check_at = 64  # the heaps' total size at which `_compact` next looks

    def __len__(self) -> int:
        return len(self._lower_armed) + len(self._upper_armed)

    def arm(self, slot: int, lower: float, upper: float) -> None:
        """Arm (or move) `slot`'s lower and upper level; NaN leaves that one as it is. One call for both,
        as a new position needs on the quote path (a strategy re-opening from a trigger)."""
        token = self._token
        if lower == lower:
            token += 1
            self._lower_armed[slot] = token
            _push(self._lower, (-lower, token, slot))
        if upper == upper:
            token += 1
            self._upper_armed[slot] = token
            _push(self._upper, (upper, token, slot))
        self._token = token
        if len(self._lower) + len(self._upper) > self._check_at:
            self._compact()

    def disarm(self, slot: int) -> None:
        """Forget both levels of `slot` (the heap entries die lazily)."""
        self._lower_armed.pop(slot, None)
        self._upper_armed.pop(slot, None)

    def disarm_lower(self, slot: int) -> None:
        self._lower_armed.pop(slot, None)

    def disarm_upper(self, slot: int) -> None:
        self._upper_armed.pop(slot, None)

    def lower_top(self) -> float:
        """The highest armed lower level, or -inf."""
        h, armed = self._lower, self._lower_armed
        while h and armed.get(h[0][2]) != h[0][1]:
            heapq.heappop(h)
        return -h[0][0] if h else -math.inf

    def upper_top(self) -> float:
        """The lowest armed upper level, or +inf."""
        h, armed = self._upper, self._upper_armed
        while h and armed.get(h[0][2]) != h[0][1]:
            heapq.heappop(h)
        return h[0][0] if h else math.inf

    def pop_crossed(self, price: float) -> tuple[list[int], list[int]]:
        """Disarm every slot `price` crossed: (lower levels >= price, highest first; upper levels <=
        price, lowest first). The quote path's one call per crossing (no generators)."""
        lower: list[int] = []
        h, armed = self._lower, self._lower_armed
        while h:
            neg, token, slot = h[0]
            if armed.get(slot) != token:
                heapq.heappop(h)
            elif -neg >= price:
                heapq.heappop(h)
                del armed[slot]
                lower.append(slot)
            else:
                break
        upper: list[int] = []
        h, armed = self._upper, self._upper_armed
        while h:
            level, token, slot = h[0]
            if armed.get(slot) != token:
                heapq.heappop(h)
            elif level <= price:
                heapq.heappop(h)
                del armed[slot]
                upper.append(slot)
            else:
                break
        return lower, upper

    def _compact(self) -> None:
        # Dead entries are dropped when they reach the top; rebuild only if they dominate the heap,
        # so memory stays proportional to the live positions. Looked at again once the heaps hold 64
        # entries more (`arm` compares one sum, not two ratios, a push).
        for h, armed in ((self._lower, self._lower_armed), (self._upper, self._upper_armed)):
            if len(h) > 64 and len(h) > 4 * len(armed):
                h[:] = [e for e in h if armed.get(e[2]) == e[1]]
                heapq.heapify(h)
        self._check_at = len(self._lower) + len(self._upper) + 64
