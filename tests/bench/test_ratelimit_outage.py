"""A Redis outage slows the rate limiter down but never makes a send raise (found by the fault soak).

The limiter's clocks and sleeps are replaced by a fake clock, so these tests check what it decides
(how long it waits, which buckets it uses), never how long anything took on this machine.
"""

import asyncio
import time
import types

import pytest

from messaging import ratelimit


class FakeClock:
    """Stands in for the ``time`` and ``asyncio`` modules inside messaging.ratelimit."""

    def __init__(self, now: float = 1_000_000.0):
        self.now = now
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(ratelimit, "time", types.SimpleNamespace(monotonic=fake.monotonic, time=fake.time))
    monkeypatch.setattr(ratelimit, "asyncio", types.SimpleNamespace(sleep=fake.sleep))
    return fake


def test_it_falls_back_to_local_buckets_when_redis_is_down(settings, monkeypatch, clock, caplog):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    monkeypatch.setattr(ratelimit, "_REDIS_GRACE_SECONDS", 0.5)
    limiter = ratelimit.RateLimiter()

    async def take_three():
        for _ in range(3):
            await limiter.acquire([("number:+14155550100", 1000.0)], 1)

    asyncio.run(take_three())  # does not raise
    # it waited out the grace period in short steps, asking Redis again after each, then went on locally
    assert clock.slept and max(clock.slept) <= 0.25
    assert sum(clock.slept) == pytest.approx(0.5, abs=0.01)  # plus 1 ms between sends at 1000/s
    assert limiter._local._state  # the local bucket took the tokens
    assert "using this process's own buckets" in caplog.text


def test_it_uses_redis_again_once_it_answers(clock):
    limiter = ratelimit.RateLimiter()
    limiter._down_since = time.monotonic()  # as after an outage
    waits = asyncio.run(_two_takes(limiter))
    # the shared schedule (rate 1/s) moved a second on after the first send: the next is a second away
    assert waits[0] == 0.0 and waits[1] == pytest.approx(1.0, abs=0.1)  # on Redis's clock
    assert limiter._down_since is None
    assert not limiter._local._state  # the local buckets were not used


async def _two_takes(limiter):
    return [await limiter._take("number:+14155550199", 1.0, 1) for _ in range(2)]
