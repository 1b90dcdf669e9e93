"""The replay store: a value (a signature nonce) is accepted once within its TTL.

One Redis round trip: ``SET key 1 NX EX ttl`` (Django's ``cache.add``). If Redis
cannot answer, the request is refused with a 503 (the provider retries later):
without the store a replay could not be told from a first use.

:func:`spend` writes the same key without waiting for the answer: a V3-signed
callback spends the V2 nonce beside it while its INSERT runs (one wait, not two),
and ignores the answer (V3 needs no store). :func:`spend_alongside` hands that write
to the status INSERT instead, which sends the nonces of every callback sharing its
flush in one write (:class:`providers.events.Alongside`).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from typing import Any

import redis
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache

from providers.events import Alongside
from providers.webhooks.base import WebhookError

logger = logging.getLogger(__name__)


class ReplayStoreUnavailable(WebhookError):
    status = 503


def first_use(*, scope: str, nonce: str, ttl: int) -> bool:
    """True the first time ``nonce`` is seen in ``scope`` (within ``ttl`` seconds), False for every repeat.

    A nonce is never released, not even when the request then fails: a genuine
    request that failed is not retried with the same nonce, but a replay could be.
    """
    key = _key(scope, nonce)
    try:
        # The default cache answers "added" while Redis is down (it degrades to an empty cache);
        # here that would accept every replay, so ask Redis itself and let a failure show.
        backend = caches["default"]
        add = RedisCache.add if isinstance(backend, RedisCache) else type(backend).add
        added = bool(add(backend, key, 1, timeout=ttl))
    except Exception:  # Redis is down or slow: refuse rather than accept a possible replay
        logger.warning("replay store unavailable; refusing a %s request", scope, exc_info=True)
        raise ReplayStoreUnavailable("replay store unavailable, try again later") from None
    return added


def _key(scope: str, nonce: str) -> str:
    return f"webhooks:replay:{scope}:{hashlib.sha256(nonce.encode()).hexdigest()}"


def _nothing() -> None:
    return None


def spend(*, scope: str, nonce: str, ttl: int) -> Callable[[], None]:
    """Mark ``nonce`` used, as :func:`first_use` does, without waiting: returns ``finish``, which reads the answer.

    Call ``finish`` exactly once, when the request has done its own work (the reply is there by then). The
    answer itself does not matter and a failure is only noted: the caller does not depend on the store.
    """
    return spend_all([(scope, nonce, ttl)])


def spend_alongside(*, scope: str, nonce: str, ttl: int) -> Alongside:
    """:func:`spend` as a write that goes out with a report's INSERT, in one write with the other callbacks'."""
    return Alongside(spend_all, (scope, nonce, ttl))


def spend_all(nonces: list[tuple[str, str, int]]) -> Callable[[], None]:
    """:func:`spend` for several ``(scope, nonce, ttl)`` in one write (a pipeline); ``finish`` reads every answer."""
    backend = caches["default"]
    if not isinstance(backend, RedisCache):  # tests may configure another cache: nothing to overlap
        for scope, nonce, ttl in nonces:
            backend.add(_key(scope, nonce), 1, timeout=ttl)
        return _nothing
    # Django's RedisCache: its key (prefix, version) and value encoding, so first_use sees the same key.
    # The commands go out now; the caller's INSERT runs meanwhile.
    packed = b"".join(
        _set_nx_ex(backend.make_and_validate_key(_key(scope, nonce)), ttl) for scope, nonce, ttl in nonces
    )
    pool = backend._cache._get_connection_pool(True)  # type: ignore[attr-defined]  # Django's (write=True)
    conn: Any = None
    try:
        conn = pool.get_connection()
        conn.send_packed_command([packed], check_health=False)
    except (redis.RedisError, OSError) as exc:
        _failed(pool, conn, exc)
        return _nothing

    def finish() -> None:
        try:
            for _ in nonces:
                conn.read_response()
        except (redis.RedisError, OSError) as exc:
            _failed(pool, conn, exc)
        else:
            pool.release(conn)

    return finish


def _failed(pool: Any, conn: Any, exc: BaseException) -> None:
    logger.warning("replay store unavailable; a V3 request's V2 nonce was not spent", exc_info=exc)
    if conn is not None:
        conn.disconnect()  # a reply may still be on its way: this connection must not be reused as it is
        pool.release(conn)


def _set_nx_ex(key: str, ttl: int) -> bytes:
    """``SET key 1 NX EX ttl`` in Redis's wire format (redis-py's general packer cost more than the round trip)."""
    k, t = key.encode(), str(ttl).encode()
    return b"*6\r\n$3\r\nSET\r\n$%d\r\n%b\r\n$1\r\n1\r\n$2\r\nNX\r\n$2\r\nEX\r\n$%d\r\n%b\r\n" % (len(k), k, len(t), t)
