"""The default cache: Redis, answering as an empty cache while Redis is down or hung.

Everything kept in the cache can be lost: login attempt counts, debounce and lock
keys, chart caches, failover counters. So a failed call answers as an empty cache
that keeps nothing would, never with an error: ``get`` returns the default, ``add``
returns True (the key was not there), writes are dropped. Consequences, all chosen:
login and other allauth rate limits fail open (their counters read as empty); locks
around periodic work are taken, so overlapping runs are possible (that work is safe
to repeat); debounced replies (HELP, relay no-conversation) may go out more often.
The first failure is logged; later calls skip Redis for ``REDIS_RETRY_AFTER_SECONDS``
(smsportal.redis_clients), so a request pays at most one timeout.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar

import redis
from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.redis import RedisCache, RedisCacheClient

from smsportal import redis_clients

T = TypeVar("T")


class ReusedClientRedisCacheClient(RedisCacheClient):
    """Django's client, keeping one ``redis.Redis`` per connection pool.

    Django builds a new ``redis.Redis`` on every cache call, and its constructor registers
    some 170 response callbacks: that cost more CPU than the Redis round trip itself on the
    webhook path. A ``redis.Redis`` over a pool is thread-safe and holds no connection of its
    own (the pool hands one out per command, and starts afresh in a forked child).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, redis.Redis] = {}

    def get_client(self, key: Any = None, *, write: bool = False) -> redis.Redis:
        pool = self._get_connection_pool(write)  # type: ignore[attr-defined]  # Django's; not in django-stubs
        client = self._clients.get(id(pool))  # pools live as long as this object: their ids stay theirs
        if client is None:
            client = self._clients[id(pool)] = redis.Redis(connection_pool=pool)  # what Django's get_client builds
        return client


class DegradingRedisCache(RedisCache):
    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = ReusedClientRedisCacheClient
        self._url = re.split("[;,]", server)[0]  # as RedisCache splits it

    def _or(self, default: T, call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        url = self._url
        if not redis_clients.available(url):
            return default
        try:
            return call(*args, **kwargs)
        except (redis.RedisError, OSError) as exc:
            redis_clients.report_failure(exc, url)
            return default

    def add(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):  # type: ignore[no-untyped-def]
        return self._or(True, super().add, key, value, timeout, version)

    def get(self, key, default=None, version=None):  # type: ignore[no-untyped-def]
        return self._or(default, super().get, key, default, version)

    def set(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):  # type: ignore[no-untyped-def]
        return self._or(None, super().set, key, value, timeout, version)

    def touch(self, key, timeout=DEFAULT_TIMEOUT, version=None):  # type: ignore[no-untyped-def]
        return self._or(False, super().touch, key, timeout, version)

    def delete(self, key, version=None):  # type: ignore[no-untyped-def]
        return self._or(False, super().delete, key, version)

    def get_many(self, keys, version=None):  # type: ignore[no-untyped-def]
        return self._or({}, super().get_many, keys, version)

    def has_key(self, key, version=None):  # type: ignore[no-untyped-def]
        return self._or(False, super().has_key, key, version)

    def incr(self, key, delta=1, version=None):  # type: ignore[no-untyped-def]
        # As if the counter had just been created: callers count, they do not decide on it alone.
        return self._or(delta, super().incr, key, delta, version)

    def set_many(self, data, timeout=DEFAULT_TIMEOUT, version=None):  # type: ignore[no-untyped-def]
        return self._or(list(data), super().set_many, data, timeout, version)

    def delete_many(self, keys, version=None):  # type: ignore[no-untyped-def]
        return self._or(None, super().delete_many, keys, version)

    def clear(self):  # type: ignore[no-untyped-def]
        return self._or(None, super().clear)
