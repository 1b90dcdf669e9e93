"""The one entry point for provider events, shared by webhooks and the sandbox."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import psycopg
from django.db import connection, transaction
from django.db.models import Field
from django.utils import timezone

from providers.models import ProviderEvent
from providers.signals import inbound_received, status_events_stored
from providers.status import InboundSMS, StatusEvent

logger = logging.getLogger(__name__)


def record_status_events(*, events: Iterable[StatusEvent]) -> int:
    """Store delivery reports and make sure a worker applies them soon."""
    rows = [
        ProviderEvent(
            provider=e.provider,
            kind=ProviderEvent.Kind.STATUS,
            message_ref=e.message_ref,
            provider_message_id=e.provider_message_id[:100],
            status=e.status.value,
            error_code=e.error_code[:20],
            error_text=e.error_text[:255],
            occurred_at=e.occurred_at,
            cost_micros=e.cost_micros,
            cost_currency=e.cost_currency[:3],
            payload=e.raw,
        )
        for e in events
    ]
    if not rows:
        return 0
    if len(rows) == 1:
        _insert_one(rows[0])
    else:
        ProviderEvent.objects.bulk_create(rows)
    transaction.on_commit(_announce_stored)
    return len(rows)


_INSERT_FIELDS = (
    "provider",
    "kind",
    "message_ref",
    "provider_message_id",
    "status",
    "error_code",
    "error_text",
    "occurred_at",
    "cost_micros",
    "cost_currency",
    "payload",
    "received_at",
)
_insert_sql: list[str] = []  # built once per process


def _concrete_field(name: str) -> tuple[Field[Any, Any], str]:
    """``ProviderEvent``'s field ``name`` and its column (``get_field`` may also return a reverse relation)."""
    field = ProviderEvent._meta.get_field(name)
    if not isinstance(field, Field) or field.column is None:
        raise TypeError(f"ProviderEvent.{name} has no column")
    return field, field.column


def _insert_one(row: ProviderEvent) -> None:
    """One plain INSERT (autocommit: durable when it returns), without the ORM's per-save machinery.

    Values go through each field's own ``get_db_prep_save``, so they are stored
    exactly as ``save()`` would store them; the row's ``pk`` is not read back
    (nobody needs it). Signals: ``ProviderEvent`` has no save receivers.
    """
    row.received_at = timezone.now()
    fields = [_concrete_field(name) for name in _INSERT_FIELDS]
    if not _insert_sql:
        quote = connection.ops.quote_name
        columns = ", ".join(quote(column) for _, column in fields)
        _insert_sql.append(
            f"INSERT INTO {quote(ProviderEvent._meta.db_table)} ({columns}) VALUES ({', '.join(['%s'] * len(fields))})"
        )
    values = [f.get_db_prep_save(getattr(row, f.attname), connection) for f, _ in fields]
    # Server-side binding of a statement prepared once per connection: PostgreSQL skips
    # parse and plan, and psycopg skips quoting every value into the SQL text.
    connection.ensure_connection()
    connection.validate_no_broken_transaction()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(_insert_sql[0], values, prepare=True)


def _announce_stored() -> None:
    status_events_stored.send(sender=ProviderEvent)  # providers.tasks queues the drain


def record_inbound(*, inbound: InboundSMS) -> ProviderEvent:
    """Store an inbound message and hand it to the apps at once (STOP must act now)."""
    with transaction.atomic():
        event = ProviderEvent.objects.create(
            provider=inbound.provider,
            kind=ProviderEvent.Kind.INBOUND,
            provider_message_id=inbound.provider_message_id[:100],
            payload=inbound.raw,
        )
        inbound_received.send(sender=ProviderEvent, inbound=inbound, event=event)
        ProviderEvent.objects.filter(pk=event.pk).update(processed_at=event.received_at)
    return event
