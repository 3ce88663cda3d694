"""``python -m joe.metrics.healthcheck``: the container HEALTHCHECK — exit 0 when `/health` would say ok
(the store answers and the daemon's heartbeat is fresh), 1 otherwise, printing the reason. Reads the
store directly (no token, no HTTP server needed)."""

from __future__ import annotations

import json
import sys


def main() -> int:
    from joe.config.settings import load_settings
    from joe.metrics.health import health
    from joe.store import open_store

    settings = load_settings()
    try:
        store = open_store(settings.database_url, data_dir=settings.data_dir)
    except Exception as exc:
        print(json.dumps({"status": "down", "store": f"cannot open ({type(exc).__name__})"}))
        return 1
    try:
        code, body = health(store)
    finally:
        store.close()
    print(json.dumps(body))
    return 0 if code == 200 else 1


if __name__ == "__main__":
    sys.exit(main())
