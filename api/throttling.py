"""Per-token request throttling (REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["token"], env API_THROTTLE_RATE)."""

from __future__ import annotations

from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle


class TokenRateThrottle(SimpleRateThrottle):
    """One bucket per API token; session and forced logins fall back to one per user.

    DRF answers a throttled request with 429 and a Retry-After header.
    """

    scope = "token"

    def get_rate(self):
        # Read at request time, not import time, so the setting can change (tests, reloads).
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def get_cache_key(self, request, view):
        token_pk = getattr(request.auth, "pk", None)
        if token_pk is not None:
            ident = f"token:{token_pk}"
        elif request.user and request.user.is_authenticated:
            ident = f"user:{request.user.pk}"
        else:
            ident = f"ip:{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}
