"""A Redis outage slows the rate limiter down but never makes a send raise (found by the fault soak)."""

import asyncio
import time

import pytest

from campaigns import ratelimit


def test_it_falls_back_to_local_buckets_when_redis_is_down(settings, monkeypatch):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    monkeypatch.setattr(ratelimit, "_REDIS_GRACE_SECONDS", 0.5)
    limiter = ratelimit.RateLimiter()

    async def take_three():
        start = time.monotonic()
        for _ in range(3):
            await limiter.acquire([("number:+14155550100", 1000.0)], 1)
        return time.monotonic() - start

    waited = asyncio.run(take_three())
    assert 0.5 <= waited < 5  # waited out the grace period, then went on locally
    assert limiter._local._state  # the local bucket took the tokens


def test_it_uses_redis_again_once_it_answers(settings):
    limiter = ratelimit.RateLimiter()
    waits = asyncio.run(_two_takes(limiter))
    assert waits == [0.0, pytest.approx(1.0, abs=0.01)]  # the shared bucket (burst 1) is empty after one
    assert limiter._down_since is None


async def _two_takes(limiter):
    return [await limiter._take("number:+14155550199", 1.0, 1) for _ in range(2)]
