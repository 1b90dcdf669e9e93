"""The one entry point for provider events, shared by webhooks and the sandbox."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from functools import cache
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
    reports = list(events)
    if not reports:
        return 0
    if len(reports) == 1:
        _insert_one(reports[0])
    else:
        ProviderEvent.objects.bulk_create([ProviderEvent(**_row_values(e)) for e in reports])
    transaction.on_commit(_announce_stored)
    return len(reports)


def _row_values(e: StatusEvent) -> dict[str, Any]:
    """A report's ``ProviderEvent`` fields (by attribute name), cut to their column sizes."""
    return {
        "provider": e.provider,
        "kind": ProviderEvent.Kind.STATUS,
        "message_ref": e.message_ref,
        "provider_message_id": e.provider_message_id[:100],
        "status": e.status.value,
        "error_code": e.error_code[:20],
        "error_text": e.error_text[:255],
        "occurred_at": e.occurred_at,
        "cost_micros": e.cost_micros,
        "cost_currency": e.cost_currency[:3],
        "payload": e.raw,
    }


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


def _concrete_field(name: str) -> tuple[Field[Any, Any], str]:
    """``ProviderEvent``'s field ``name`` and its column (``get_field`` may also return a reverse relation)."""
    field = ProviderEvent._meta.get_field(name)
    if not isinstance(field, Field) or field.column is None:
        raise TypeError(f"ProviderEvent.{name} has no column")
    return field, field.column


@cache
def _insert_statement(vendor: str) -> tuple[str, tuple[Field[Any, Any], ...]]:
    """The single-row INSERT and its fields in placeholder order, built once per process."""
    concrete = [_concrete_field(name) for name in _INSERT_FIELDS]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(column) for _, column in concrete)
    placeholders = ", ".join(["%s"] * len(concrete))
    sql = f"INSERT INTO {quote(ProviderEvent._meta.db_table)} ({columns}) VALUES ({placeholders})"
    return sql, tuple(field for field, _ in concrete)


def _insert_one(event: StatusEvent) -> None:
    """One plain INSERT (autocommit: durable when it returns), without the ORM's per-save machinery.

    Values go through each field's own ``get_db_prep_save``, so they are stored
    exactly as ``save()`` would store them; no model instance is built and the
    row's ``pk`` is not read back (nobody needs it). Signals: ``ProviderEvent``
    has no save receivers.
    """
    values = _row_values(event)
    values["received_at"] = timezone.now()  # auto_now_add
    sql, fields = _insert_statement(connection.vendor)
    params = [f.get_db_prep_save(values[f.attname], connection) for f in fields]
    # Server-side binding of a statement prepared once per connection: PostgreSQL skips
    # parse and plan, and psycopg skips quoting every value into the SQL text.
    connection.ensure_connection()
    connection.validate_no_broken_transaction()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(sql, params, prepare=True)


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
