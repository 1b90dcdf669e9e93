"""Celery tasks for the relay: thin wrappers around services."""

from __future__ import annotations

from celery import shared_task
from django.core.cache import cache

from relay.services import conversations_expire


@shared_task(name="relay.expire_conversations", ignore_result=True)
def expire_conversations() -> int:
    # An overlapping run is skipped rather than queued; closing is conditional anyway.
    if not cache.add("relay:expire-lock", 1, timeout=55):
        return 0
    try:
        return conversations_expire()
    finally:
        cache.delete("relay:expire-lock")
