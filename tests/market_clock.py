"""The suite's market clock. Live and shadow runs judge market hours at the minute (joe.safety.live_book):
without a fixed clock, whether a test's run may enter would depend on the wall-clock hour. Every test runs
at a Tuesday 10:00 New York (NYSE open) through JOE_CLOCK_START (tests/conftest.py); a fixture that builds
its own environment (a module-scoped one, or one that keeps JOE_* out) passes it on itself."""

OPEN_MINUTE = "2026-12-01T15:00:00+00:00"
