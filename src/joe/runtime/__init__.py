"""Runtime: wiring settings, store, audit and layers together for `joe run --once` (and the daemon)."""
