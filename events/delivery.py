"""Delivering one endpoint's outbox, in order: the drain that Celery runs (events.tasks.deliver).

One drainer per endpoint at a time (a PostgreSQL advisory lock). It POSTs pending events oldest
first over one HTTP connection; the first failure stops the drain and sets the endpoint's
``retry_at`` from ``WEBHOOK_RETRY_SCHEDULE`` (about 24 h in all), and beat's sweep starts the
next try. When the schedule is exhausted the endpoint is disabled; its events wait for it.
Outcomes are written per chunk (one UPDATE and one INSERT of attempts), not per event.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import httpx
from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Exists, F, OuterRef
from django.utils import timezone

from events import signing
from events.models import DeliveryAttempt, OutboxEvent, WebhookEndpoint
from events.services import endpoint_disable_for_failures

logger = logging.getLogger(__name__)

LOCK_NAMESPACE = 0x6576  # "ev": advisory locks of this app, keyed (namespace, endpoint id)
CHUNK = 200


@dataclass
class DrainResult:
    delivered: int = 0
    failed: bool = False
    disabled: bool = False
    more: bool = False  # stopped on time with events left
    attempts: list[DeliveryAttempt] = field(default_factory=list)


def _try_lock(endpoint_id: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [LOCK_NAMESPACE, endpoint_id])
        return bool(cursor.fetchone()[0])


def _unlock(endpoint_id: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [LOCK_NAMESPACE, endpoint_id])


def _pending(endpoint_id: int) -> list[OutboxEvent]:
    return list(
        OutboxEvent.objects.filter(endpoint_id=endpoint_id, status=OutboxEvent.Status.PENDING).order_by("id")[:CHUNK]
    )


def body_of(event: OutboxEvent) -> bytes:
    return json.dumps(event.payload, separators=(",", ":"), ensure_ascii=False).encode()


def _post(client: httpx.Client, endpoint: WebhookEndpoint, event: OutboxEvent) -> DeliveryAttempt:
    body = body_of(event)
    started = time.monotonic()
    now = timezone.now()
    headers = signing.headers(
        secret=endpoint.secret, webhook_id=event.webhook_id, timestamp=int(now.timestamp()), body=body
    )
    status, error = None, ""
    try:
        response = client.post(endpoint.url, content=body, headers=headers)
        status = response.status_code
        if not 200 <= status < 300:
            error = f"HTTP {status}"
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"[:255] or type(exc).__name__
    return DeliveryAttempt(
        event=event,
        attempted_at=now,
        status_code=status,
        succeeded=not error,
        error=error[:255],
        duration_ms=int((time.monotonic() - started) * 1000),
    )


def _record(delivered: list[int], attempts: list[DeliveryAttempt], failed: OutboxEvent | None) -> None:
    now = timezone.now()
    with transaction.atomic():
        if delivered:
            OutboxEvent.objects.filter(pk__in=delivered).update(
                status=OutboxEvent.Status.DELIVERED, delivered_at=now, attempts=F("attempts") + 1, last_error=""
            )
        if failed is not None:
            OutboxEvent.objects.filter(pk=failed.pk).update(attempts=F("attempts") + 1, last_error=attempts[-1].error)
        DeliveryAttempt.objects.bulk_create(attempts)


def retry_delay(failure_count: int) -> timedelta | None:
    """The wait after the ``failure_count``-th failure in a row; None once the schedule is exhausted."""
    schedule = settings.WEBHOOK_RETRY_SCHEDULE
    if failure_count > len(schedule):
        return None
    return timedelta(seconds=schedule[failure_count - 1])


def deliver_endpoint(endpoint_id: int, *, now: datetime | None = None, max_seconds: float | None = None) -> DrainResult:
    """Drain ``endpoint_id``'s pending events in order until none are left, one fails, or time is up."""
    result = DrainResult()
    if not _try_lock(endpoint_id):
        return result  # another drainer has it
    try:
        endpoint = WebhookEndpoint.objects.filter(pk=endpoint_id).first()
        now = now or timezone.now()
        if endpoint is None or not endpoint.is_active or (endpoint.retry_at and endpoint.retry_at > now):
            return result
        deadline = time.monotonic() + (max_seconds or settings.WEBHOOK_DRAIN_SECONDS)
        with httpx.Client(timeout=settings.WEBHOOK_TIMEOUT_SECONDS, follow_redirects=False) as client:
            while True:
                events = _pending(endpoint_id)
                if not events:
                    # Clear the kick flag, then look once more: an event committed meanwhile was not kicked.
                    _clear_kick(endpoint_id)
                    events = _pending(endpoint_id)
                    if not events:
                        break
                delivered: list[int] = []
                attempts: list[DeliveryAttempt] = []
                failed: OutboxEvent | None = None
                for event in events:
                    attempt = _post(client, endpoint, event)
                    attempts.append(attempt)
                    if not attempt.succeeded:
                        failed = event
                        break
                    delivered.append(event.pk)
                _record(delivered, attempts, failed)
                result.delivered += len(delivered)
                result.attempts.extend(attempts)
                if failed is not None:
                    _after_failure(endpoint, attempts[-1], result)
                    return result
                if delivered and endpoint.failure_count:
                    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(failure_count=0, retry_at=None)
                    endpoint.failure_count, endpoint.retry_at = 0, None
                if time.monotonic() > deadline:
                    result.more = True
                    break
    finally:
        _clear_kick(endpoint_id)  # whatever stopped this drain, the next kick queues a task again
        _unlock(endpoint_id)
    return result


def _after_failure(endpoint: WebhookEndpoint, attempt: DeliveryAttempt, result: DrainResult) -> None:
    result.failed = True
    count = endpoint.failure_count + 1
    delay = retry_delay(count)
    if delay is None:
        reason = f"{count} failed attempts in a row since the last success; last: {attempt.error}"
        endpoint_disable_for_failures(endpoint=endpoint, reason=reason)
        result.disabled = True
        return
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(failure_count=count, retry_at=timezone.now() + delay)
    logger.info("webhook endpoint %s: attempt failed (%s); retry in %s", endpoint.pk, attempt.error, delay)


def _clear_kick(endpoint_id: int) -> None:
    try:
        cache.delete(f"events:kick:{endpoint_id}")
    except Exception:
        logger.warning("events: cannot clear the kick flag of endpoint %s", endpoint_id, exc_info=True)


_PURGE_SQL = """
WITH old AS (
    SELECT id FROM events_outboxevent
    WHERE status = 'delivered' AND delivered_at < %(cutoff)s
    ORDER BY id LIMIT %(limit)s
), attempts AS (
    DELETE FROM events_deliveryattempt WHERE event_id IN (SELECT id FROM old)
)
DELETE FROM events_outboxevent WHERE id IN (SELECT id FROM old)
"""


def purge_delivered(*, now: datetime | None = None, limit: int = 10_000) -> int:
    """Delete up to ``limit`` events delivered more than ``WEBHOOK_RETENTION_DAYS`` ago, with their
    attempts (pending events are never purged). Returns how many events went."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.WEBHOOK_RETENTION_DAYS)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_PURGE_SQL, {"cutoff": cutoff, "limit": limit})
        return int(cursor.rowcount)


def due_endpoints(*, now: datetime | None = None) -> list[int]:
    """Active endpoints with pending events whose next try is due: what beat's sweep drains."""
    now = now or timezone.now()
    pending = OutboxEvent.objects.filter(endpoint_id=OuterRef("pk"), status=OutboxEvent.Status.PENDING)
    return list(
        WebhookEndpoint.objects.filter(is_active=True)
        .exclude(retry_at__gt=now)
        .filter(Exists(pending))
        .values_list("pk", flat=True)
    )
