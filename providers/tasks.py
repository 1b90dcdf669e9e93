"""Celery tasks of the providers package: applying stored delivery reports."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from functools import partial

from celery import shared_task
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.dispatch import receiver
from django.utils import timezone

from providers.db import retry_on_deadlock
from providers.events import record_status_events
from providers.models import ProviderEvent
from providers.signals import status_events_stored, status_received
from providers.status import DeliveryStatus, StatusEvent

logger = logging.getLogger(__name__)
DRAIN_BATCH = 2000
DRAIN_DEBOUNCE_SECONDS = 0.5
_DRAIN_DEBOUNCE_KEY = "providers:drain-scheduled"
DRAIN_RETRY_SECONDS = 1
_DRAIN_RETRY_KEY = "providers:drain-retry-scheduled"
_last_scheduled = [0.0]  # per process: most callbacks skip the Redis round trip entirely


@receiver(status_events_stored, dispatch_uid="providers.schedule_drain")
def schedule_drain(sender: object = None, **kwargs: object) -> None:
    """Queue one drain task per second at most; the drain's trailing pass and beat catch the rest."""
    now = time.monotonic()
    if not settings.CELERY_TASK_ALWAYS_EAGER:
        if now - _last_scheduled[0] < DRAIN_DEBOUNCE_SECONDS:
            return
        _last_scheduled[0] = now
    try:
        if cache.add(_DRAIN_DEBOUNCE_KEY, 1, timeout=1):
            apply_status_events.delay()
    except Exception:  # Redis or the broker is down: the report is stored, beat applies it
        logger.warning("could not queue the status drain; beat will apply stored reports", exc_info=True)


@dataclass(frozen=True)
class _Page:
    seen: int  # reports read
    consumed: int  # of which applied or discarded (the rest are kept for a later drain)
    last_id: int


def drain_status_events(*, limit: int = DRAIN_BATCH) -> int:
    """Apply every stored report, ``limit`` per transaction; returns how many were consumed.

    Safe to run anywhere, any number of times, concurrently with the send path:
    the receivers skip messages that another transaction holds and keep their
    reports for a later drain, and a deadlock retries the page, never drops it.
    """
    return _drain(limit=limit)[0]


def _drain(*, limit: int = DRAIN_BATCH) -> tuple[int, int]:
    """(reports consumed, reports kept for a later drain)."""
    consumed, kept, after = 0, 0, 0
    while True:
        page = retry_on_deadlock(partial(_drain_page, limit=limit, after_id=after), what="status drain")
        consumed += page.consumed
        kept += page.seen - page.consumed
        if page.seen < limit:
            return consumed, kept
        after = page.last_id


def _drain_page(*, limit: int, after_id: int) -> _Page:
    """One transaction: the next ``limit`` unprocessed reports after ``after_id``, in id order."""
    with transaction.atomic():
        rows = list(
            ProviderEvent.objects.select_for_update(skip_locked=True)
            .filter(processed_at__isnull=True, kind=ProviderEvent.Kind.STATUS, id__gt=after_id)
            .order_by("id")[:limit]
        )
        if not rows:
            return _Page(seen=0, consumed=0, last_id=after_id)
        events = [
            StatusEvent(
                provider=r.provider,
                message_ref=r.message_ref,
                status=DeliveryStatus(r.status),
                provider_message_id=r.provider_message_id,
                error_code=r.error_code,
                error_text=r.error_text,
                occurred_at=r.occurred_at,
                cost_micros=r.cost_micros,
                cost_currency=r.cost_currency,
                event_id=r.pk,
                received_at=r.received_at,
            )
            for r in rows
        ]
        kept: set[int] = set()
        for _, later in status_received.send(sender=ProviderEvent, events=events):
            if isinstance(later, set | frozenset | list | tuple):  # receivers that keep nothing return None
                kept.update(int(pk) for pk in later)
        done = [r.pk for r in rows if r.pk not in kept]
        if done:
            ProviderEvent.objects.filter(pk__in=done).update(processed_at=timezone.now())
    return _Page(seen=len(rows), consumed=len(done), last_id=rows[-1].pk)


@shared_task(name="providers.apply_status_events", ignore_result=True)
def apply_status_events() -> int:
    total, kept = _drain()
    if not settings.CELERY_TASK_ALWAYS_EAGER:
        # A trailing pass picks up reports stored while the first ran (their schedule was debounced).
        time.sleep(DRAIN_DEBOUNCE_SECONDS)
        applied, kept = _drain()
        total += applied
        if kept:
            # Early reports wait for the send path to store the provider id, and reports for rows
            # the send path held wait for it to let go: come back soon rather than at beat's next tick.
            _schedule_retry()
    return total


def _schedule_retry() -> None:
    try:
        if cache.add(_DRAIN_RETRY_KEY, 1, timeout=DRAIN_RETRY_SECONDS):
            apply_status_events.apply_async(countdown=DRAIN_RETRY_SECONDS)
    except Exception:  # beat applies them
        logger.warning("could not queue a later status drain; beat will apply the kept reports", exc_info=True)


@shared_task(name="providers.sandbox_report", ignore_result=True)
def sandbox_report(accepted: list[tuple[str, str, bool]], stage: str = "sent") -> None:
    """Simulated delivery reports for the sandbox backend: sent, then delivered or undelivered."""
    events = []
    for ref, provider_id, fails in accepted:
        if stage == "sent":
            status = DeliveryStatus.SENT
        else:
            status = DeliveryStatus.UNDELIVERED if fails else DeliveryStatus.DELIVERED
        events.append(
            StatusEvent(
                provider="sandbox",
                message_ref=ref,
                status=status,
                provider_message_id=provider_id,
                error_code="80" if status == DeliveryStatus.UNDELIVERED else "",
                error_text="destination temporarily unavailable (sandbox)"
                if status == DeliveryStatus.UNDELIVERED
                else "",
                raw={"sandbox": True, "stage": stage},
            )
        )
    with transaction.atomic():
        record_status_events(events=events)
    if stage == "sent":
        schedule_sandbox_report(accepted, stage="final")


def schedule_sandbox_report(accepted: list[tuple[str, str, bool]], stage: str = "sent") -> None:
    """Queue the next simulated report after SMS_SANDBOX_DELAY_SECONDS (a short delay, so countdown is fine)."""
    delay = settings.SMS_SANDBOX_DELAY_SECONDS
    if delay:
        sandbox_report.apply_async((accepted, stage), countdown=delay)
    else:
        sandbox_report.delay(accepted, stage)
