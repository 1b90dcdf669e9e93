"""The replay store: a value (a signature nonce) is accepted once within its TTL.

One Redis round trip: ``SET key 1 NX EX ttl`` (Django's ``cache.add``). If Redis
cannot answer, the request is refused with a 503 (the provider retries later):
without the store a replay could not be told from a first use.
"""

from __future__ import annotations

import hashlib
import logging

from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache

from providers.webhooks.base import WebhookError

logger = logging.getLogger(__name__)


class ReplayStoreUnavailable(WebhookError):
    status = 503


def first_use(*, scope: str, nonce: str, ttl: int) -> bool:
    """True the first time ``nonce`` is seen in ``scope`` (within ``ttl`` seconds), False for every repeat.

    A nonce is never released, not even when the request then fails: a genuine
    request that failed is not retried with the same nonce, but a replay could be.
    """
    key = f"webhooks:replay:{scope}:{hashlib.sha256(nonce.encode()).hexdigest()}"
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
