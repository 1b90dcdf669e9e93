"""The bench's settings plus one bare 302 view (``/bench/302``), the redirect bench's reference."""

from bench.settings import *  # noqa: F403

ROOT_URLCONF = "bench.redirect_urls"
