"""Writes for event webhooks: publishing events into the outbox, endpoints, resends.

``event_publish`` is how any app above this one emits an event; apps below (messaging,
recipients, campaigns) send their own signals, which events/receivers.py turns into events.
Events are written in the caller's transaction, so an event exists exactly when its change
committed; delivery starts after the commit and never makes the caller wait.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from accounts.models import User
from accounts.services import audit_record
from events.models import EventType, OutboxEvent, WebhookEndpoint, new_secret

logger = logging.getLogger(__name__)

MESSAGE_FIELDS = ("id", "campaign_id", "recipient_id", "to", "sender", "kind", "status", "provider_message_id")


def event_timestamp(now: datetime) -> str:
    """A time as events spell it: UTC, ISO 8601, ``Z``."""
    return now.astimezone(UTC).isoformat().replace("+00:00", "Z")


def event_publish(*, event_type: str, data: dict[str, Any], now: datetime | None = None) -> int:
    """Queue one event for every active endpoint that receives ``event_type``. Returns how many rows.

    Call it inside the transaction of the change the event reports. ``data`` must be JSON-able.
    """
    if event_type not in EventType.values:
        raise ValueError(f"Unknown event type {event_type!r}")
    if not _any_active_endpoint():
        return 0
    now = now or timezone.now()
    endpoints = [e for e in WebhookEndpoint.objects.filter(is_active=True) if e.receives(event_type)]
    if not endpoints:
        return 0
    body = {"type": event_type, "timestamp": event_timestamp(now), "data": data}
    OutboxEvent.objects.bulk_create([OutboxEvent(endpoint=e, event_type=event_type, payload=body) for e in endpoints])
    _kick_after_commit([e.pk for e in endpoints])
    return len(endpoints)


# This process's last answer of events_wanted(): (monotonic time, answer).
_WANTED: list[tuple[float, bool]] = []
WANTED_MAX_AGE_SECONDS = 1.0


def events_wanted(*, event_type: str) -> bool:
    """Whether ``event_publish`` might write an event of ``event_type`` now, for a hot path that can skip
    its transaction when none would be written (the tracked-link redirect).

    The endpoint flag, remembered in this process for up to a second (never longer than the shared
    flag is cached): asking Redis cost about half the redirect's time. So an endpoint created or
    enabled in another process may miss that second of such events; here it is seen at once.
    """
    if event_type not in EventType.values:
        return False
    max_age = min(WANTED_MAX_AGE_SECONDS, settings.WEBHOOK_ENDPOINT_CACHE_SECONDS)
    now = time.monotonic()
    if _WANTED and now - _WANTED[0][0] < max_age:
        return _WANTED[0][1]
    answer = _any_active_endpoint()
    _WANTED[:] = [(now, answer)]
    return answer


def _receives_sql(event_type_sql: str) -> str:
    """``WebhookEndpoint.receives`` in SQL, for the set-based statements below: one spelling of the rule."""
    return f"ep.is_active AND (cardinality(ep.event_types) = 0 OR {event_type_sql} = ANY(ep.event_types))"


# One statement per batch of moved messages: no per-message work in the send path.
_MESSAGE_EVENTS_SQL = f"""
WITH inserted AS (
    INSERT INTO events_outboxevent (endpoint_id, event_type, payload, status, attempts, created_at, last_error)
    SELECT ep.id, %(type)s,
        jsonb_build_object(
            'type', %(type)s,
            'timestamp', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
            'data', jsonb_build_object(
                'id', m.id, 'campaign_id', m.campaign_id, 'recipient_id', m.recipient_id,
                'to', m."to", 'from', m.sender, 'kind', m.kind, 'status', m.status,
                'provider', m.provider, 'provider_message_id', m.provider_message_id,
                'segments', m.segments, 'error_code', m.error_code, 'error_text', m.error_text
            )
        ),
        'pending', 0, now(), ''
    FROM messaging_message m
    CROSS JOIN events_webhookendpoint ep
    WHERE m.id = ANY(%(ids)s) AND {_receives_sql("%(type)s")}
    ORDER BY ep.id, m.id
    RETURNING endpoint_id
)
SELECT DISTINCT endpoint_id FROM inserted
"""

_SENT_FROM = {"pending", "claimed", "sending", "unknown"}


def message_events_for_move(*, rows: Sequence[tuple[int, int | None, str]], to: str) -> None:
    """message.sent / .delivered / .failed for a batch that messaging.transitions.move moved."""
    if to in {"queued", "sent"}:
        event_type = EventType.MESSAGE_SENT.value
        ids = [pk for pk, _, old in rows if old in _SENT_FROM]  # queued -> sent is not a second "sent"
    elif to == "delivered":
        event_type, ids = EventType.MESSAGE_DELIVERED.value, [r[0] for r in rows]
    elif to in {"failed", "undelivered"}:
        event_type, ids = EventType.MESSAGE_FAILED.value, [r[0] for r in rows]
    else:
        return
    if not ids or not _any_active_endpoint():
        return
    with connection.cursor() as cursor:
        cursor.execute(_MESSAGE_EVENTS_SQL, {"type": event_type, "ids": ids})
        endpoint_ids = [row[0] for row in cursor.fetchall()]
    if endpoint_ids:
        _kick_after_commit(endpoint_ids)


# One statement per click, on the redirect's path: no endpoint flag, no separate endpoint read.
_LINK_CLICKED_SQL = f"""
WITH inserted AS (
    INSERT INTO events_outboxevent (endpoint_id, event_type, payload, status, attempts, created_at, last_error)
    SELECT ep.id, %(type)s,
        jsonb_build_object('type', %(type)s, 'timestamp', %(timestamp)s::text, 'data', %(data)s::jsonb),
        'pending', 0, now(), ''
    FROM events_webhookendpoint ep
    WHERE {_receives_sql("%(type)s")}
    ORDER BY ep.id
    RETURNING endpoint_id
)
SELECT endpoint_id FROM inserted
"""


def link_clicked_publish(*, data: dict[str, Any], now: datetime) -> None:
    """link.clicked for every endpoint that receives it, in one statement (the same body as ``event_publish``)."""
    params = {"type": EventType.LINK_CLICKED.value, "timestamp": event_timestamp(now), "data": json.dumps(data)}
    with connection.cursor() as cursor:
        cursor.execute(_LINK_CLICKED_SQL, params)
        endpoint_ids = [row[0] for row in cursor.fetchall()]
    if endpoint_ids:
        _kick_after_commit(endpoint_ids)


# One statement per upsert chunk of consent moves: the same event body as a single change.
_CONSENT_EVENTS_SQL = f"""
WITH changes AS (
    SELECT * FROM json_to_recordset(%(changes)s::json) AS c(i bigint, p text, f text, t text)
), inserted AS (
    INSERT INTO events_outboxevent (endpoint_id, event_type, payload, status, attempts, created_at, last_error)
    SELECT ep.id, k.type,
        jsonb_build_object(
            'type', k.type,
            'timestamp', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
            'data', jsonb_build_object('id', c.i, 'phone', c.p, 'from_status', c.f, 'channel', %(channel)s::text)
        ),
        'pending', 0, now(), ''
    FROM changes c
    JOIN (VALUES ('opted_in', %(opted_in)s::text), ('opted_out', %(opted_out)s::text)) AS k(status, type)
        ON k.status = c.t
    CROSS JOIN events_webhookendpoint ep
    WHERE {_receives_sql("k.type")}
    ORDER BY ep.id, c.i
    RETURNING endpoint_id
)
SELECT DISTINCT endpoint_id FROM inserted
"""


def consent_events_for_changes(*, changes: Sequence[tuple[int, str, str, str]], channel: str) -> None:
    """recipient.opted_in / .opted_out for a set of (recipient_id, phone, from_status, to_status)."""
    if not changes or not _any_active_endpoint():
        return
    payload = json.dumps([{"i": i, "p": p, "f": f, "t": t} for i, p, f, t in changes])
    with connection.cursor() as cursor:
        cursor.execute(
            _CONSENT_EVENTS_SQL,
            {
                "changes": payload,
                "channel": channel,
                "opted_in": EventType.RECIPIENT_OPTED_IN.value,
                "opted_out": EventType.RECIPIENT_OPTED_OUT.value,
            },
        )
        endpoint_ids = [row[0] for row in cursor.fetchall()]
    if endpoint_ids:
        _kick_after_commit(endpoint_ids)


def _any_active_endpoint() -> bool:
    """Whether any endpoint is active: cached a few seconds, so a portal without webhooks pays nothing."""
    key = "events:any-endpoint"
    try:
        cached = cache.get(key)
    except Exception:  # Redis down: ask the database
        cached = None
    if cached is None:
        cached = WebhookEndpoint.objects.filter(is_active=True).exists()
        try:
            cache.set(key, cached, timeout=settings.WEBHOOK_ENDPOINT_CACHE_SECONDS)
        except Exception:
            logger.warning("events: cannot cache the endpoint flag", exc_info=True)
    return bool(cached)


def _forget_endpoints() -> None:
    _WANTED.clear()
    try:
        cache.delete("events:any-endpoint")
    except Exception:
        logger.warning("events: cannot clear the endpoint flag", exc_info=True)


def _kick_after_commit(endpoint_ids: Iterable[int]) -> None:
    ids = sorted(set(endpoint_ids))
    transaction.on_commit(lambda: kick(endpoint_ids=ids))


def kick(*, endpoint_ids: Iterable[int]) -> None:
    """Queue a delivery task per endpoint, at most one at a time each (a flag in Redis; beat's sweep
    catches anything a lost flag or task leaves behind)."""
    from events import tasks

    for endpoint_id in endpoint_ids:
        try:
            fresh = cache.add(f"events:kick:{endpoint_id}", 1, timeout=60)
        except Exception:
            fresh = True
        if fresh:
            tasks.deliver.delay(endpoint_id)


# --- Endpoints (admin) ------------------------------------------------------------

ENDPOINT_FIELDS = ("url", "description", "event_types", "is_active")


def _validate_url(url: str) -> None:
    if settings.WEBHOOK_REQUIRE_HTTPS and not url.startswith("https://"):
        raise ValidationError({"url": "Use an https URL (WEBHOOK_REQUIRE_HTTPS)."})
    if not url.startswith(("https://", "http://")):
        raise ValidationError({"url": "Give an http(s) URL."})


def endpoint_create(
    *, actor: User, url: str, event_types: Sequence[str] = (), description: str = ""
) -> WebhookEndpoint:
    _validate_url(url)
    unknown = sorted(set(event_types) - set(EventType.values))
    if unknown:
        raise ValidationError({"event_types": f"Unknown event type(s): {', '.join(unknown)}."})
    with transaction.atomic():
        endpoint = WebhookEndpoint(url=url, description=description, event_types=list(event_types), created_by=actor)
        endpoint.full_clean()
        endpoint.save()
        audit_record(actor=actor, action="webhook.create", target=endpoint, detail=f"{url} {event_types or 'all'}")
    _forget_endpoints()
    return endpoint


def endpoint_update(*, actor: User, endpoint: WebhookEndpoint, **fields: Any) -> WebhookEndpoint:
    """Change an endpoint. Enabling it again clears its failures and delivers what waited."""
    changes = []
    for name, value in fields.items():
        if name in ENDPOINT_FIELDS and getattr(endpoint, name) != value:
            changes.append(f"{name}: {getattr(endpoint, name)} -> {value}")
            setattr(endpoint, name, value)
    if not changes:
        return endpoint
    if "url" in fields:
        _validate_url(endpoint.url)
    enabling = fields.get("is_active") is True
    if enabling:
        endpoint.disabled_at, endpoint.disabled_reason, endpoint.failure_count, endpoint.retry_at = None, "", 0, None
    elif fields.get("is_active") is False and endpoint.disabled_at is None:
        endpoint.disabled_at, endpoint.disabled_reason = timezone.now(), f"disabled by {actor}"
    with transaction.atomic():
        endpoint.full_clean()
        endpoint.save()
        audit_record(actor=actor, action="webhook.update", target=endpoint, detail="; ".join(changes))
        if enabling:
            _kick_after_commit([endpoint.pk])
    _forget_endpoints()
    return endpoint


def endpoint_rotate_secret(*, actor: User, endpoint: WebhookEndpoint) -> WebhookEndpoint:
    with transaction.atomic():
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(secret=new_secret())
        endpoint.refresh_from_db()
        audit_record(actor=actor, action="webhook.rotate_secret", target=endpoint)
    return endpoint


def endpoint_disable_for_failures(*, endpoint: WebhookEndpoint, reason: str) -> None:
    """Repeated failures: stop trying. Pending events stay, delivered in order once re-enabled."""
    now = timezone.now()
    with transaction.atomic():
        changed = WebhookEndpoint.objects.filter(pk=endpoint.pk, is_active=True).update(
            is_active=False, disabled_at=now, disabled_reason=reason[:255], retry_at=None
        )
        if changed:
            audit_record(actor=None, action="webhook.disabled", target=endpoint, detail=reason)
    _forget_endpoints()
    logger.warning("webhook endpoint %s disabled: %s", endpoint.pk, reason)


def event_resend(*, actor: User, event: OutboxEvent) -> OutboxEvent:
    """Deliver an event again (same webhook-id, so a receiver can tell it is a repeat)."""
    with transaction.atomic():
        OutboxEvent.objects.filter(pk=event.pk).update(status=OutboxEvent.Status.PENDING, delivered_at=None)
        event.refresh_from_db()
        audit_record(actor=actor, action="webhook.resend", target=event, detail=event.event_type)
        if event.endpoint.is_active:
            _kick_after_commit([event.endpoint_id])
    return event
