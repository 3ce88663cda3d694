"""Exit codes of the `joe` command (documented in the README)."""

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1  # the command ran and failed (error printed), or `joe audit verify` found a break
    USAGE = 2  # bad arguments
    REFUSED = 3  # refused for safety (e.g. live mode where only paper runs); nothing was sent
