"""A fast signal of fresh opt-outs, so sends already in flight can stop within a fraction of a second.

The database stays the source of truth: the send path checks consent when it
claims messages and before each short chunk. This sorted set in Redis (member:
E.164 number, score: when it opted out) lets the sender loop re-check just
before each request, between those database checks.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from typing import cast

import redis.asyncio as aioredis
from django.conf import settings

from smsportal import redis_clients

logger = logging.getLogger(__name__)
KEY = "smsportal:recent-opt-outs"
KEEP_SECONDS = 3600


def announce_opt_out(phone: str) -> None:
    """Publish an opt-out that was just committed. Failure only loses the shortcut, never the opt-out."""
    announce_opt_outs([phone])


def announce_opt_outs(phones: Iterable[str]) -> None:
    """Publish several committed opt-outs in one round trip (a bulk upsert or import)."""
    now = time.time()
    members = dict.fromkeys(phones, now)
    if not members:
        return
    if not redis_clients.available():
        logger.warning("Redis is down: %d opt-out(s) not published; the database check still applies", len(members))
        return
    try:
        pipe = redis_clients.client().pipeline()
        pipe.zadd(KEY, members)
        pipe.zremrangebyscore(KEY, 0, now - KEEP_SECONDS)
        pipe.execute()
    except Exception as exc:
        redis_clients.report_failure(exc)
        logger.warning("could not publish an opt-out to Redis; the database check still applies", exc_info=True)


def withdraw_opt_out(phone: str) -> None:
    """The person opted back in: stop the shortcut from holding their messages."""
    if not redis_clients.available():
        return  # the entry ages out within KEEP_SECONDS; the database says they opted back in
    try:
        redis_clients.client().zrem(KEY, phone)
    except Exception as exc:
        redis_clients.report_failure(exc)
        logger.warning("could not remove an opt-out from Redis", exc_info=True)


_async_clients: dict[int, aioredis.Redis] = {}


class RecentOptOuts:
    """Read side, for the sender loop: the numbers that opted out since ``since`` (a Unix time).

    Refreshed at most every ``interval`` seconds, so a chunk of sends costs a few
    Redis calls per second, not one per message.
    """

    def __init__(self, *, since: float, interval: float = 0.2) -> None:
        self.since = since
        self.interval = interval
        self.numbers: set[str] = set()
        self._checked = 0.0

    async def contains(self, phone: str) -> bool:
        now = time.monotonic()
        if now - self._checked >= self.interval and redis_clients.available():
            self._checked = now
            try:
                # Without withscores only the members come back; redis-py types the scored form too.
                members = cast("list[bytes | str]", await self._redis().zrangebyscore(KEY, self.since, "+inf"))
                self.numbers = {m.decode() if isinstance(m, bytes) else m for m in members}
            except Exception as exc:
                redis_clients.report_failure(exc)
                logger.warning("could not read recent opt-outs from Redis", exc_info=True)
        return phone in self.numbers

    @staticmethod
    def _redis() -> aioredis.Redis:
        loop_id = id(asyncio.get_running_loop())
        client = _async_clients.get(loop_id)
        if client is None:
            client = _async_clients[loop_id] = aioredis.from_url(settings.REDIS_URL, **redis_clients.client_options())
        return client
