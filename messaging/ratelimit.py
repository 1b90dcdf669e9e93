"""Per-number and per-provider send rates, shared by every worker through Redis.

A token bucket per key in a Lua script (GOV.UK Notify's approach): each call
asks for ``cost`` tokens (segments) and gets back how long to wait. Without
Redis (the embedded default) each process keeps its own buckets, which is
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
# How long a send waits for Redis to come back before falling back to per-process buckets.
_REDIS_GRACE_SECONDS = 5.0

# KEYS[1] bucket; ARGV: rate/s, burst, cost, now(ms). Returns ms to wait (0 = taken).
_LUA = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local now = tonumber(ARGV[4])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or burst
local ts = tonumber(state[2]) or now
tokens = math.min(burst, tokens + (now - ts) * rate / 1000)
local wait = 0
if tokens >= cost then
  tokens = tokens - cost
else
  wait = math.ceil((cost - tokens) * 1000 / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tokens, 'ts', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 60000)
return wait
"""


class _LocalBuckets:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state: dict[str, tuple[float, float]] = {}

    def take(self, key: str, rate: float, burst: float, cost: float) -> float:
        now = time.monotonic()
        with self._lock:
            tokens, ts = self._state.get(key, (burst, now))
            tokens = min(burst, tokens + (now - ts) * rate)
            if tokens >= cost:
                self._state[key] = (tokens - cost, now)
                return 0.0
            self._state[key] = (tokens, now)
            return (cost - tokens) / rate


class RateLimiter:
    """Waits until ``cost`` tokens are free in every bucket named. Use on the sender loop."""

    def __init__(self) -> None:
        self._redis: aioredis.Redis | None = None
        self._script: AsyncScript | None = None
        self._local = _LocalBuckets()
        self._burst_seconds = settings.SMS_RATE_BURST_SECONDS
        self._down_since: float | None = None

    def _redis_script(self) -> AsyncScript | None:
        if self._script is None and settings.REDIS_URL:
            self._redis = aioredis.from_url(settings.REDIS_URL, **redis_clients.client_options())
            self._script = self._redis.register_script(_LUA)
        return self._script

    async def _take(self, key: str, rate: float, cost: float) -> float:
        burst = max(cost, rate * self._burst_seconds)
        script = self._redis_script()
        if script is None:
            return self._local.take(key, rate, burst, cost)
        try:
            wait_ms = await script(keys=[f"smsportal:rate:{key}"], args=[rate, burst, cost, int(time.time() * 1000)])
        except RedisError as exc:
            # Redis is down or restarting. Raising here would abort the whole chunk after its rows
            # became ``sending`` (outcome unknown for days); wait a little, then limit this process
            # on its own until Redis answers again.
            if time.monotonic() - self._redis_down_since(reset=False) < _REDIS_GRACE_SECONDS:
                return 0.25  # acquire() sleeps, then asks again
            logger.warning("rate limiter: Redis unavailable (%s); using this process's own buckets", exc)
            return self._local.take(key, rate, burst, cost)
        self._redis_down_since(reset=True)
        return int(wait_ms) / 1000

    def _redis_down_since(self, *, reset: bool) -> float:
        if reset:
            self._down_since = None
        elif self._down_since is None:
            self._down_since = time.monotonic()
        return self._down_since or time.monotonic()

    async def acquire(self, limits: list[tuple[str, float]], cost: int) -> None:
        """``limits`` is ``[(bucket_key, rate_per_second), ...]``; a rate of 0 means no limit."""
        for key, rate in limits:
            if rate <= 0:
                continue
            while (wait := await self._take(key, rate, cost)) > 0:
                await asyncio.sleep(wait)


_limiters: dict[int, RateLimiter] = {}


def get_limiter() -> RateLimiter:
    """One limiter per event loop (redis.asyncio connections belong to a loop)."""
    loop = asyncio.get_running_loop()
    limiter = _limiters.get(id(loop))
    if limiter is None:
        limiter = _limiters[id(loop)] = RateLimiter()
    return limiter
