"""Per-number and per-provider send rates, shared by every worker through Redis.

A smooth schedule, not a bucket that starts full: each key holds the earliest time its next
send may start (GCRA's "theoretical arrival time"). A send of ``cost`` segments at a rate of
``r``/s moves it ``cost / r`` seconds on, so sends are evenly spaced from the very first one:
no burst at start-up or at a second boundary, and no 1-second window over the rate, however
many workers share the key. One Lua call checks every key of a send at once (its number and
its provider's account) and takes them all or none, so waiting for one never bunches the
other. Without Redis (the embedded default) each process keeps its own schedule, which is
exact for the single worker the embedded mode runs.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time

import redis.asyncio as aioredis
from django.conf import settings
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

from smsportal import redis_clients

logger = logging.getLogger(__name__)
# How long a send waits for Redis to come back before falling back to per-process schedules.
_REDIS_GRACE_SECONDS = 5.0

# KEYS: one per limit; ARGV[1] unused, ARGV[2] cost, ARGV[2+i] rate/s of KEYS[i].
# Returns "0" when every key was free (and moves each on), else the ms to wait (nothing taken).
# The clock is Redis's own, so every worker's sends are spaced on one clock.
_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local cost = tonumber(ARGV[2])
local start = now
for i, key in ipairs(KEYS) do
  local tat = tonumber(redis.call('GET', key))
  if tat and tat > start then start = tat end
end
if start > now then
  return tostring(start - now)
end
for i, key in ipairs(KEYS) do
  local interval = cost * 1000 / tonumber(ARGV[2 + i])
  redis.call('SET', key, tostring(now + interval), 'PX', math.ceil(interval) + 60000)
end
return "0"
"""


class _LocalBuckets:
    """The same schedule in this process only (Redis unreachable, or not configured)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state: dict[str, float] = {}

    def take(self, limits: list[tuple[str, float]], cost: float) -> float:
        now = time.monotonic()
        with self._lock:
            start = max([now, *(self._state.get(key, 0.0) for key, _ in limits)])
            if start > now:
                return start - now
            for key, rate in limits:
                self._state[key] = now + cost / rate
            return 0.0


class RateLimiter:
    """Waits until a send of ``cost`` segments may start under every limit named. Use on the sender loop."""

    def __init__(self) -> None:
        self._redis: aioredis.Redis | None = None
        self._script: AsyncScript | None = None
        self._local = _LocalBuckets()
        self._down_since: float | None = None

    def _redis_script(self) -> AsyncScript | None:
        if self._script is None and settings.REDIS_URL:
            self._redis = aioredis.from_url(settings.REDIS_URL, **redis_clients.client_options())
            self._script = self._redis.register_script(_LUA)
        return self._script

    async def _take(self, key: str, rate: float, cost: float) -> float:
        return await self._take_all([(key, rate)], cost)

    async def _take_all(self, limits: list[tuple[str, float]], cost: float) -> float:
        """0 when the send may start now (every key moved on), else seconds to wait (nothing taken)."""
        script = self._redis_script()
        if script is None:
            return self._local.take(limits, cost)
        try:
            wait_ms = await script(
                keys=[f"smsportal:pace:{key}" for key, _ in limits],
                args=[int(time.time() * 1000), cost, *(rate for _, rate in limits)],
            )
        except RedisError as exc:
            # Redis is down or restarting. Raising here would abort the whole chunk after its rows
            # became ``sending`` (outcome unknown for days); wait a little, then limit this process
            # on its own until Redis answers again.
            if time.monotonic() - self._redis_down_since(reset=False) < _REDIS_GRACE_SECONDS:
                return 0.25  # acquire() sleeps, then asks again
            logger.warning("rate limiter: Redis unavailable (%s); using this process's own buckets", exc)
            return self._local.take(limits, cost)
        self._redis_down_since(reset=True)
        return float(wait_ms) / 1000

    def _redis_down_since(self, *, reset: bool) -> float:
        if reset:
            self._down_since = None
        elif self._down_since is None:
            self._down_since = time.monotonic()
        return self._down_since or time.monotonic()

    async def acquire(self, limits: list[tuple[str, float]], cost: int) -> None:
        """``limits`` is ``[(key, rate_per_second), ...]``; a rate of 0 means no limit."""
        active = [(key, rate) for key, rate in limits if rate > 0]
        if not active:
            return
        while (wait := await self._take_all(active, cost)) > 0:
            await asyncio.sleep(wait)


_limiters: dict[int, RateLimiter] = {}


def get_limiter() -> RateLimiter:
    """One limiter per event loop (redis.asyncio connections belong to a loop)."""
    loop = asyncio.get_running_loop()
    limiter = _limiters.get(id(loop))
    if limiter is None:
        limiter = _limiters[id(loop)] = RateLimiter()
    return limiter
