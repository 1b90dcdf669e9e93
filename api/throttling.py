"""API request limits, per token and per user, counted atomically in Redis.

Rates (REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]): ``token`` (env API_THROTTLE_RATE) for each
API token, ``user`` (env API_USER_THROTTLE_RATE) for all of a person's requests together,
whichever token or session they come through. A request passes only if every bucket it
belongs to has room; one Lua script checks and counts them all, so parallel requests
cannot overshoot (DRF's own throttles read and write the cache in two steps and do).
Fixed windows: a bucket opens with its first request and lasts the rate's period.

If Redis is down or hung the request passes (fail open) and a warning is logged:
limiting is a guard against overuse, and an API that refuses everything while Redis
is away would be worse (docs/security.md).
"""

from __future__ import annotations

import logging
from typing import Any

from redis.commands.core import Script
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle, SimpleRateThrottle

from smsportal import redis_clients

logger = logging.getLogger(__name__)
KEY_PREFIX = "smsportal:throttle"

# KEYS: the buckets. ARGV: each bucket's limit, then each bucket's window in ms.
# Returns 0 when the request is counted, or the ms until the first full bucket reopens.
_LUA = """
local n = #KEYS
for i = 1, n do
  local used = tonumber(redis.call('GET', KEYS[i]) or '0')
  if used >= tonumber(ARGV[i]) then
    local ttl = redis.call('PTTL', KEYS[i])
    if ttl < 0 then ttl = tonumber(ARGV[n + i]) end
    return ttl
  end
end
for i = 1, n do
  if redis.call('INCR', KEYS[i]) == 1 then
    redis.call('PEXPIRE', KEYS[i], ARGV[n + i])
  end
end
return 0
"""


def _script() -> Script:
    return redis_clients.script(_LUA)


def parse_rate(rate: object) -> tuple[int, int] | None:
    """``"600/min"`` -> (600, 60), as DRF reads rates; None (no limit) for an unset rate."""
    if not rate:
        return None
    num, duration = SimpleRateThrottle.parse_rate(None, str(rate))  # type: ignore[arg-type]  # uses no state
    return None if num is None or duration is None else (int(num), int(duration))


class TokenRateThrottle(BaseThrottle):
    """One bucket per API token and one per user; anonymous requests get one per client address.

    DRF answers a throttled request with 429 and a Retry-After header.
    """

    def __init__(self) -> None:
        self._wait: float | None = None

    def buckets(self, request: Any) -> list[tuple[str, tuple[int, int]]]:
        rates = api_settings.DEFAULT_THROTTLE_RATES  # read per request: settings can change (tests, reloads)
        found: list[tuple[str, tuple[int, int] | None]] = []
        token_pk = getattr(request.auth, "pk", None)
        if token_pk is not None:
            found.append((f"token:{token_pk}", parse_rate(rates.get("token"))))
        if request.user and request.user.is_authenticated:
            found.append((f"user:{request.user.pk}", parse_rate(rates.get("user"))))
        else:
            found.append((f"ip:{self.get_ident(request)}", parse_rate(rates.get("token"))))
        return [(f"{KEY_PREFIX}:{name}", rate) for name, rate in found if rate is not None]

    def allow_request(self, request: Any, view: Any) -> bool:
        buckets = self.buckets(request)
        if not buckets or not redis_clients.available():
            return True
        try:
            wait_ms = int(
                _script()(
                    keys=[key for key, _ in buckets],
                    args=[limit for _, (limit, _) in buckets] + [seconds * 1000 for _, (_, seconds) in buckets],
                )
            )
        except Exception as exc:
            redis_clients.report_failure(exc)
            logger.warning("API throttling skipped for this request: Redis failed (%s)", type(exc).__name__)
            return True
        if wait_ms <= 0:
            return True
        self._wait = wait_ms / 1000
        return False

    def wait(self) -> float | None:
        return self._wait
