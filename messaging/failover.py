"""Provider failover for pools that hold numbers at several providers (GOV.UK Notify's model).

Each provider's recent outcomes are counted in the shared cache. While one
provider's error rate is over ``SMS_FAILOVER_ERROR_RATE``, new sends move to the
pool's numbers at a healthy provider, except a 10% trickle of probes that lets
it prove it has recovered; then traffic drifts back. Every switch is told to
the campaigns that were sending (messaging.hooks), which record it in their history.
"""

from __future__ import annotations

import random
import time
from typing import Protocol, TypeVar

from django.conf import settings
from django.core.cache import cache

from messaging import hooks

WINDOW_SECONDS = 30
PROBE_SHARE = 0.1


class _AtProvider(Protocol):
    @property
    def provider(self) -> str: ...


N = TypeVar("N", bound=_AtProvider)


def _keys(provider: str) -> list[str]:
    now = int(time.time() // WINDOW_SECONDS)
    return [f"health:{provider}:{now - i}" for i in range(2)]


def record(*, provider: str, ok: int, failed: int, campaign_ids: list[int]) -> None:
    key = _keys(provider)[0]
    for suffix, n in (("ok", ok), ("bad", failed)):
        if n:
            cache.add(f"{key}:{suffix}", 0, timeout=WINDOW_SECONDS * 3)
            try:
                cache.incr(f"{key}:{suffix}", n)
            except ValueError:
                cache.set(f"{key}:{suffix}", n, timeout=WINDOW_SECONDS * 3)
    _note_switch(provider, campaign_ids)


HEALTHY, FAILING, UNKNOWN = "healthy", "failing", "unknown"


def health(provider: str) -> str:
    """``failing`` over the error rate, ``healthy`` under it, ``unknown`` with too few recent sends to tell."""
    values = cache.get_many([f"{k}:{s}" for k in _keys(provider) for s in ("ok", "bad")])
    ok: int = sum(v for k, v in values.items() if k.endswith(":ok"))
    bad: int = sum(v for k, v in values.items() if k.endswith(":bad"))
    total = ok + bad
    if total < settings.SMS_FAILOVER_MIN_SENDS:
        return UNKNOWN
    return HEALTHY if bad / total <= settings.SMS_FAILOVER_ERROR_RATE else FAILING


def is_healthy(provider: str) -> bool:
    return health(provider) != FAILING


def _note_switch(provider: str, campaign_ids: list[int]) -> None:
    healthy = is_healthy(provider)
    key = f"health:{provider}:state"
    previous = cache.get(key, True)
    if previous == healthy:
        return
    cache.set(key, healthy, timeout=None)
    if campaign_ids:
        hooks.campaigns().provider_health_changed(provider=provider, healthy=healthy, campaign_ids=campaign_ids)


def usable(pool: list[N]) -> list[N]:
    """The pool's numbers to use now: all of them unless a provider is failing."""
    providers = {s.provider for s in pool}
    if len(providers) < 2:
        return pool
    failing = {p for p in providers if not is_healthy(p)}
    if not failing or failing == providers or random.random() < PROBE_SHARE:
        return pool
    return [s for s in pool if s.provider not in failing]
