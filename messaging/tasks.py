"""Celery tasks of the send path: thin wrappers around the engine and the sweeper."""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task
from celery.signals import worker_ready
from django.core.cache import cache
from django.db import DatabaseError, connections

from messaging import engine, hooks, partitions, sweeper

logger = logging.getLogger(__name__)


@shared_task(name="messaging.send_batch", ignore_result=True, acks_late=True)
def send_batch(message_ids: list[int]) -> dict:
    result = engine.send_batch(message_ids=message_ids)
    if result.campaigns:
        hooks.campaigns().after_batch(sorted(result.campaigns))
    return {"claimed": result.claimed, "accepted": result.accepted}


@shared_task(name="messaging.dispatch_later", ignore_result=True)
def dispatch_later(campaign_id: int) -> None:
    """A campaign's retries fell due after its last batch: queue them (messaging.dispatch)."""
    from messaging.dispatch import dispatch_later_key  # (dispatch imports this module)

    cache.delete(dispatch_later_key(campaign_id))  # so that this dispatch may schedule the next one
    hooks.campaigns().after_batch([campaign_id])


@shared_task(name="messaging.sweep", ignore_result=True)
def sweep() -> None:
    """Repair what crashes leave behind (leases, lost tasks, outcomes never reported)."""
    if not cache.add("lock:messaging-sweep", 1, timeout=30):
        return  # an overlapping run is skipped, not queued
    try:
        sweeper.run()
    finally:
        cache.delete("lock:messaging-sweep")


@shared_task(name="messaging.maintain_partitions", ignore_result=True)
def maintain_partitions() -> list[str]:
    """Daily: the next months' partitions exist before anyone writes there (messaging/partitions.py)."""
    return partitions.ensure_partitions()


@worker_ready.connect
def _partitions_at_worker_start(**kwargs: Any) -> None:
    # A fresh install or a long stop must not send into DEFAULT before beat's first run.
    try:
        partitions.ensure_partitions()
    except DatabaseError:
        logger.exception("could not create message partitions at worker start; beat retries daily")
    finally:
        connections.close_all()  # the pool processes are forked from this one: no shared connection
