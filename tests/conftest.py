"""Suite-wide settings. In CI (CI=true) hypothesis is derandomized so a run is reproducible; locally
it explores new examples every run (and keeps failures in .hypothesis/ to replay them)."""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")
