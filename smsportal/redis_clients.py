"""Every Redis client's timeouts, and a per-process note of a Redis that stopped answering.

A hung Redis (it accepts connections and never replies) must cost a request about one
timeout, not 30 s: every client is built with ``REDIS_TIMEOUT_SECONDS`` as its connect
and read timeout (the cache, the broker, the opt-out signal, the send rate limiter,
API throttling, health). After one failure, callers that can do without Redis skip it
for ``REDIS_RETRY_AFTER_SECONDS`` (see ``available``), so a degraded request does not
wait for a timeout on every call it makes.
"""

from __future__ import annotations

import logging
import threading
import time
from functools import cache
from typing import Any
from urllib.parse import urlsplit

import redis
from django.conf import settings
from redis.commands.core import Script

logger = logging.getLogger(__name__)

_down_until: dict[str, float] = {}
_lock = threading.Lock()


def client_options() -> dict[str, Any]:
    """Keyword arguments for ``redis.Redis.from_url`` / ``redis.asyncio.from_url``."""
    timeout = settings.REDIS_TIMEOUT_SECONDS
    return {"socket_timeout": timeout, "socket_connect_timeout": timeout}


def client(url: str | None = None) -> redis.Redis:
    """One synchronous client (and connection pool) per process and URL."""
    return _client(url or settings.REDIS_URL, settings.REDIS_TIMEOUT_SECONDS)


@cache
def _client(url: str, timeout: float) -> redis.Redis:
    return redis.Redis.from_url(url, **client_options())


def script(lua: str) -> Script:
    """``lua`` registered on this process's :func:`client` (once per client: it sends EVALSHA, then EVAL
    if the server lost it)."""
    return _script(client(), lua)


@cache
def _script(redis_client: redis.Redis, lua: str) -> Script:
    return redis_client.register_script(lua)


def where(url: str) -> str:
    """The URL without its password, for log lines."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}{parts.path}"


def available(url: str | None = None) -> bool:
    """False while a recent failure says this Redis is down or hung: degrade without asking it."""
    return time.monotonic() >= _down_until.get(url or settings.REDIS_URL, 0.0)


def report_failure(exc: BaseException, url: str | None = None) -> None:
    """Note that Redis failed; log it once per outage window, not once per call."""
    url = url or settings.REDIS_URL
    with _lock:
        first = available(url)
        _down_until[url] = time.monotonic() + settings.REDIS_RETRY_AFTER_SECONDS
    if first:
        logger.warning(
            "Redis at %s is not answering (%s: %s); degrading for %.0f s",
            where(url),
            type(exc).__name__,
            exc,
            settings.REDIS_RETRY_AFTER_SECONDS,
        )


def reset() -> None:
    """Forget past failures (tests)."""
    _down_until.clear()
