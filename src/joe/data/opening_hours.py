"""An instrument's own weekly opening hours, as Capital.com's `/markets/{epic}` gives them
(spec: `openingHours` — `mon`…`sun`: lists of `"HH:MM - HH:MM"`, plus `zone`, e.g. "UTC";
a range ending `00:00` runs to midnight)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_MIDNIGHT = 24 * 60


def _minutes(text: str, where: str) -> int:
    text = text.strip()
    try:
        t = time.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{where}: {text!r} is not a time like 09:30") from None
    return t.hour * 60 + t.minute


@dataclass(frozen=True, slots=True)
class OpeningHours:
    """Per weekday (0 = Monday) the open minute ranges [start, end) in `zone`."""

    ranges: tuple[tuple[tuple[int, int], ...], ...]
    zone: ZoneInfo

    @classmethod
    def parse(cls, raw: Mapping[str, Any], what: str = "openingHours") -> OpeningHours:
        """Parse the broker's structure; `ValueError` names the day and the bad value."""
        zone_name = raw.get("zone") or "UTC"
        try:
            zone = ZoneInfo(str(zone_name))
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{what}.zone: unknown time zone {zone_name!r}") from None
        days = []
        for d in DAYS:
            spans = raw.get(d) or []
            if not isinstance(spans, list):
                raise ValueError(f"{what}.{d}: expected a list of 'HH:MM - HH:MM', got {spans!r}")
            out = []
            for span in spans:
                start, sep, end = str(span).partition("-")
                if not sep:
                    raise ValueError(f"{what}.{d}: {span!r} is not 'HH:MM - HH:MM'")
                a, b = _minutes(start, f"{what}.{d}"), _minutes(end, f"{what}.{d}")
                out.append((a, _MIDNIGHT if b == 0 else b))
            days.append(tuple(out))
        return cls(tuple(days), zone)

    def is_open(self, ts: datetime) -> bool:
        """True if `ts` (aware) falls in one of the day's ranges, in the instrument's zone."""
        if ts.tzinfo is None:
            raise ValueError("is_open needs a timezone-aware datetime")
        local = ts.astimezone(self.zone)
        m = local.hour * 60 + local.minute
        return any(a <= m < b for a, b in self.ranges[local.weekday()])
