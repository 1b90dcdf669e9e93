"""The embedded default's demo (``seed_demo``, run by ``runportal``): its names, so pages can point at it."""

from __future__ import annotations

DEMO_LIST = "Demo list"
DEMO_CAMPAIGN = "Welcome (demo)"
DEMO_NUMBER = "+14155550100"
DEMO_UNDELIVERED_SUFFIX = "666"  # the sandbox reports numbers ending so as undelivered
