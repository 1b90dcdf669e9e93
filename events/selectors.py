"""Reads for event webhooks."""

from __future__ import annotations

from django.db.models import QuerySet

from events.models import OutboxEvent, WebhookEndpoint


def pending_count(*, endpoint: WebhookEndpoint) -> int:
    return OutboxEvent.objects.filter(endpoint=endpoint, status=OutboxEvent.Status.PENDING).count()


def endpoints_list() -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.order_by("id")


def events_list(*, endpoint_id: int | None = None, status: str = "", event_type: str = "") -> QuerySet[OutboxEvent]:
    qs = OutboxEvent.objects.select_related("endpoint")
    if endpoint_id:
        qs = qs.filter(endpoint_id=endpoint_id)
    if status:
        qs = qs.filter(status=status)
    if event_type:
        qs = qs.filter(event_type=event_type)
    return qs
