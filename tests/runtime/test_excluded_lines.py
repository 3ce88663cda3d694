"""The console names excluded symbols without one line per symbol of the same cause."""

from __future__ import annotations

from joe.data.quality import Finding
from joe.runtime.market import excluded_lines


def _cap(sym: str) -> Finding:
    return Finding(sym, "error", "universe_cap", "not analysed: the universe is capped", file="synthetic")


def test_same_cause_folds_into_one_line_naming_the_count_and_first_symbols() -> None:
    errors = [_cap(f"S{i:02d}") for i in range(27)]
    lines = excluded_lines(errors)
    assert len(lines) == 1
    assert lines[0].startswith("excluded: 27 symbols (S00, S01, S02, S03, S04, …) universe_cap:")


def test_distinct_causes_keep_their_own_lines_with_file_and_row() -> None:
    errors = [
        Finding("AAA", "error", "dates", "unparseable date", file="a.csv", row=4),
        Finding("BBB", "error", "dates", "unparseable date", file="b.csv", row=9),
        _cap("C1"),
        _cap("C2"),
    ]
    lines = excluded_lines(errors)
    assert lines[0] == "excluded: " + errors[0].line() and "a.csv row 4" in lines[0]
    assert "b.csv row 9" in lines[1]
    assert lines[2].startswith("excluded: 2 symbols (C1, C2) universe_cap")
    assert len(lines) == 3


def test_beyond_the_limit_the_rest_is_counted_not_dropped() -> None:
    errors = [Finding(f"X{i}", "error", "stale", "stale", file=f"x{i}.csv") for i in range(14)]
    lines = excluded_lines(errors, limit=10)
    assert len(lines) == 11
    assert lines[-1] == "... and 4 more exclusions (see the report)"
