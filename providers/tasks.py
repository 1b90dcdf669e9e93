"""Celery tasks of the providers package: applying stored delivery reports."""

from __future__ import annotations

import logging
import time

from celery import shared_task
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.dispatch import receiver
from django.utils import timezone

from providers.events import record_status_events
from providers.models import ProviderEvent
from providers.signals import status_events_stored, status_received
from providers.status import DeliveryStatus, StatusEvent

logger = logging.getLogger(__name__)
DRAIN_BATCH = 2000
DRAIN_DEBOUNCE_SECONDS = 0.5
_DRAIN_DEBOUNCE_KEY = "providers:drain-scheduled"
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


def drain_status_events(*, limit: int = DRAIN_BATCH) -> int:
    """Apply up to ``limit`` stored reports in one transaction. Safe to run anywhere, any number of times."""
    with transaction.atomic():
        rows = list(
            ProviderEvent.objects.select_for_update(skip_locked=True)
            .filter(processed_at__isnull=True, kind=ProviderEvent.Kind.STATUS)
            .order_by("id")[:limit]
        )
        if not rows:
            return 0
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
            )
            for r in rows
        ]
        status_received.send(sender=ProviderEvent, events=events)
        ProviderEvent.objects.filter(pk__in=[r.pk for r in rows]).update(processed_at=timezone.now())
    return len(rows)


@shared_task(name="providers.apply_status_events", ignore_result=True)
def apply_status_events() -> int:
    total = _drain_all()
    if not settings.CELERY_TASK_ALWAYS_EAGER:
        # A trailing pass picks up reports stored while the first ran (their schedule was debounced).
        time.sleep(DRAIN_DEBOUNCE_SECONDS)
        total += _drain_all()
    return total


def _drain_all() -> int:
    total = 0
    while (applied := drain_status_events()) > 0:
        total += applied
        if applied < DRAIN_BATCH:
            break
    return total


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
