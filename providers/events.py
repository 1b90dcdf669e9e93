"""The one entry point for provider events, shared by webhooks and the sandbox."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterable
from datetime import datetime
from functools import cache
from typing import Any

import psycopg
from django.db import DatabaseError, connection, transaction
from django.db.models import Field
from django.utils import timezone

from providers.models import ProviderEvent
from providers.signals import inbound_received, status_events_stored
from providers.status import InboundSMS, StatusEvent

logger = logging.getLogger(__name__)


def record_status_events(*, events: Iterable[StatusEvent]) -> int:
    """Store delivery reports and make sure a worker applies them soon.

    Outside a transaction (a webhook), the rows are durable when this returns: concurrent
    callers of one process share one INSERT and one COMMIT (:class:`_GroupCommit`).
    Inside one, they are part of it.
    """
    reports = list(events)
    if not reports:
        return 0
    now = timezone.now()  # auto_now_add
    rows = [_row(e, received_at=now) for e in reports]
    if connection.in_atomic_block:
        _insert_rows(rows)
        transaction.on_commit(_announce_stored)
    else:
        _group_commit.insert(rows)
        _announce_stored()
    return len(reports)


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


def _row(e: StatusEvent, *, received_at: datetime) -> tuple[Any, ...]:
    """A report's column values in ``_INSERT_FIELDS`` order, cut to their column sizes.

    As ``save()`` would store them: plain values, and the payload as the JSON text that
    ``JSONField`` writes (``json.dumps``, no custom encoder).
    """
    return (
        e.provider,
        ProviderEvent.Kind.STATUS.value,
        e.message_ref,
        e.provider_message_id[:100],
        e.status.value,
        e.error_code[:20],
        e.error_text[:255],
        e.occurred_at,
        e.cost_micros,
        e.cost_currency[:3],
        json.dumps(e.raw),
        received_at,
    )


def _concrete_field(name: str) -> tuple[Field[Any, Any], str]:
    """``ProviderEvent``'s field ``name`` and its column (``get_field`` may also return a reverse relation)."""
    field = ProviderEvent._meta.get_field(name)
    if not isinstance(field, Field) or field.column is None:
        raise TypeError(f"ProviderEvent.{name} has no column")
    return field, field.column


@cache
def _insert_statement(vendor: str) -> str:
    """One INSERT for any number of rows (one array per column), built once per process.

    The same text for every batch size, so it is prepared once per connection.
    """
    concrete = [_concrete_field(name) for name in _INSERT_FIELDS]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(column) for _, column in concrete)
    # Strings travel as text[]: a cast to varchar(n)[] would cut a long value silently, where the
    # INSERT's own assignment refuses it as the ORM's would. The payload is cast per row to jsonb.
    types = [
        "text" if f.get_internal_type() in ("CharField", "JSONField") else f.db_type(connection) for f, _ in concrete
    ]
    arrays = ", ".join(f"%s::{t}[]" for t in types)
    names = [f"c{i}" for i in range(len(concrete))]
    values = ", ".join(
        f"{n}::jsonb" if f.get_internal_type() == "JSONField" else n for n, (f, _) in zip(names, concrete, strict=True)
    )
    table = quote(ProviderEvent._meta.db_table)
    return f"INSERT INTO {table} ({columns}) SELECT {values} FROM unnest({arrays}) AS r({', '.join(names)})"


def _insert_rows(rows: list[tuple[Any, ...]]) -> None:
    """One INSERT of ``rows``, without the ORM's per-save machinery (no model instances, no pk read back).

    Server-side binding of a statement prepared once per connection: PostgreSQL skips parse and
    plan. Signals: ``ProviderEvent`` has no save receivers.
    """
    sql = _insert_statement(connection.vendor)
    columns = [list(column) for column in zip(*rows, strict=True)]
    connection.ensure_connection()
    connection.validate_no_broken_transaction()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(sql, columns, prepare=True)


class BatchFailed(DatabaseError):
    """The shared INSERT that carried this caller's rows failed (the leader has the cause)."""


class _GroupCommit:
    """Concurrent callers in one process share one INSERT and one durable COMMIT.

    A durable COMMIT waits for the WAL flush (milliseconds on a busy disk); one per callback
    made that wait, not the CPU, the limit of a threaded worker. The first caller to find no
    flush running becomes the leader: it inserts every row queued so far on its own connection
    (autocommit: one transaction), then wakes the others. Rows queued meanwhile go with the next
    leader. Nobody returns before the transaction holding its rows has committed, so an
    acknowledged callback is on disk; if that transaction fails, every caller in it gets an error.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._queue: list[_Slot] = []
        self._flushing = False

    def insert(self, rows: list[tuple[Any, ...]]) -> None:
        slot = _Slot(rows)
        with self._cond:
            self._queue.append(slot)
            while self._flushing and not slot.done:
                self._cond.wait()
            if slot.done:
                if slot.failed:
                    raise BatchFailed("the shared INSERT of this report failed") from slot.failed
                return
            batch, self._queue, self._flushing = self._queue, [], True
        failed: BaseException | None = None
        try:
            _insert_rows([row for s in batch for row in s.rows])
        except BaseException as exc:
            failed = exc
            raise
        finally:
            with self._cond:
                for s in batch:
                    s.done, s.failed = True, failed
                self._flushing = False
                self._cond.notify_all()


class _Slot:
    __slots__ = ("done", "failed", "rows")

    def __init__(self, rows: list[tuple[Any, ...]]) -> None:
        self.rows = rows
        self.done = False
        self.failed: BaseException | None = None


_group_commit = _GroupCommit()


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
