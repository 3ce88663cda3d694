"""Crash-test child: append audit records in a loop, printing each acknowledged seq (flushed).

Usage: python _audit_child.py DIR SEED [COUNT]. Without COUNT it loops until killed. Only
`joe.audit.log` is imported, to keep start-up short. Payload sizes vary up to ~200 KB so that
a SIGKILL can land inside a multi-page write() and leave a genuinely torn line.
"""

from __future__ import annotations

import random
import sys

from joe.audit.log import AuditLog


def main() -> None:
    directory, seed = sys.argv[1], int(sys.argv[2])
    count = int(sys.argv[3]) if len(sys.argv) > 3 else -1
    rng = random.Random(seed)
    log = AuditLog(directory, fsync=True)
    i = 0
    while i != count:
        size = rng.choice((10, 100, 1000, 200_000)) if rng.random() < 0.3 else 20
        rec = log.record("crash.tick", {"i": i, "seed": seed, "blob": "x" * size}, run_id=f"child-{seed}")
        sys.stdout.write(f"{rec.seq}\n")
        sys.stdout.flush()
        i += 1


if __name__ == "__main__":
    main()
