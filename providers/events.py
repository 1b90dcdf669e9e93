"""The one entry point for provider events, shared by webhooks and the sandbox."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

import psycopg
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connection, connections, transaction
from django.utils import timezone

from providers.models import ProviderEvent
from providers.signals import inbound_received, status_events_stored
from providers.status import InboundSMS, StatusEvent

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Alongside:
    """A write to another store that goes out with the INSERT of a report (a webhook's nonce ``SET``).

    ``send(items)`` sends the writes of every item in one go and returns ``finish``, which reads their
    answers; the group commit calls it once per flush with the items of every caller in it, before
    its INSERT, and ``finish`` after it (one round trip per flush, overlapping the INSERT). Neither may
    raise for a failure of that store: the report does not depend on it, and its answer changes no
    caller's outcome (the others may be answered before the leader has read it).
    """

    send: Callable[[list[Any]], Callable[[], object]]
    item: Any


def record_status_events(*, events: Iterable[StatusEvent], alongside: Sequence[Alongside] = ()) -> int:
    """Store delivery reports and make sure a worker applies them soon.

    Outside a transaction (a webhook), the rows are durable when this returns: concurrent
    callers of one process share one INSERT and one COMMIT (:class:`_GroupCommit`).
    Inside one, they are part of it. ``alongside`` goes out before the INSERT, whatever its outcome.
    """
    reports = list(events)
    if not reports:
        send_alongside(alongside)()
        return 0
    now = timezone.now()  # auto_now_add
    rows = [_row(e, received_at=now) for e in reports]
    conn = connections[DEFAULT_DB_ALIAS]  # once: every use of the ``connection`` proxy looks it up again
    if conn.in_atomic_block or not conn.get_autocommit():  # the caller's transaction holds them
        finish = send_alongside(alongside)
        try:
            _insert_rows(rows)
        finally:
            finish()
        transaction.on_commit(_announce_stored)
    else:
        _group_commit.insert(rows, tuple(alongside))
        _announce_stored()
    return len(reports)


@dataclass(frozen=True)
class Heard:
    """What :func:`reports_heard` found, per reference."""

    waiting: frozenset[str]  # a report the drain has yet to read: stored unread, or handed back now
    # Every report already handed back once and still not applied (the message cannot take it):
    # their provider ids, the evidence that they did not settle it.
    spent: Mapping[str, tuple[str, ...]]


def reports_heard(*, refs: Mapping[str, str], now: datetime) -> Heard:
    """Stored delivery reports of ``refs`` (our message reference -> the provider it was sent through)
    from that provider, carrying its id.

    A report already read (ignored because its message could not take it then, e.g. an early report
    that outwaited its limit) is handed to the next drain again, once: a message that can now adopt
    its report does. One handed back before and read again was ignored again: the message cannot
    take it, and handing it back on every sweep would keep the message waiting forever.
    """
    if not refs:
        return Heard(waiting=frozenset(), spent={})
    found = [
        (pk, ref, provider_id, processed, handed_back)
        for pk, ref, provider, provider_id, processed, handed_back in ProviderEvent.objects.filter(
            kind=ProviderEvent.Kind.STATUS, message_ref__in=list(refs)
        )
        .exclude(provider_message_id="")
        .values_list("pk", "message_ref", "provider", "provider_message_id", "processed_at", "handed_back_at")
        .order_by("pk")
        if refs[ref] == provider
    ]
    again = [pk for pk, _, _, processed, handed_back in found if processed is not None and handed_back is None]
    if again:
        ProviderEvent.objects.filter(pk__in=again, handed_back_at__isnull=True).update(
            processed_at=None, handed_back_at=now
        )
        _announce_stored()
    waiting = frozenset(ref for _, ref, _, processed, handed_back in found if processed is None or handed_back is None)
    spent: dict[str, tuple[str, ...]] = {}
    for _, ref, provider_id, _, _ in found:
        if ref not in waiting:
            spent[ref] = (*spent.get(ref, ()), provider_id)
    return Heard(waiting=waiting, spent=spent)


def send_alongside(writes: Iterable[Alongside]) -> Callable[[], None]:
    """Send ``writes``, one ``send`` call per kind; returns ``finish``, which reads all their answers."""
    items: dict[Callable[[list[Any]], Callable[[], object]], list[Any]] = {}
    for write in writes:
        items.setdefault(write.send, []).append(write.item)
    finishes = []
    for send, batch in items.items():
        try:
            finishes.append(send(batch))
        except Exception:  # a store's own failures are its to note; anything else must not cost the reports
            logger.exception("a write alongside the status INSERT failed")

    def finish() -> None:
        for each in finishes:
            try:
                each()
            except Exception:
                logger.exception("a write alongside the status INSERT failed")

    return finish


def _nothing() -> None:
    return None


def _row(e: StatusEvent, *, received_at: datetime) -> dict[str, Any]:
    """A report's columns (by name) as JSON values, cut to their column sizes.

    As ``save()`` would store them: the payload is the object ``JSONField`` writes, times
    are ISO 8601 with their offset, absent values are null.
    """
    return {
        "provider": e.provider,
        "kind": ProviderEvent.Kind.STATUS.value,
        "message_ref": e.message_ref,
        "provider_message_id": e.provider_message_id[:100],
        "status": e.status.value,
        "error_code": e.error_code[:20],
        "error_text": e.error_text[:255],
        "occurred_at": e.occurred_at.isoformat() if e.occurred_at else None,
        "cost_micros": e.cost_micros,
        "cost_currency": e.cost_currency[:3],
        "payload": e.raw,
        "received_at": received_at.isoformat(),
    }


_INSERT_COLUMNS = (
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


@cache
def _insert_statement(vendor: str) -> str:
    """One INSERT for any number of rows, from one JSON array of row objects; built once per process.

    One parameter whatever the batch size, so the statement is prepared once per connection, and
    the client encodes the batch with one ``json.dumps``. ``json_populate_recordset`` reads each
    value with its column's own type: a value too long for its column is refused, as by the ORM.
    """
    quote = connection.ops.quote_name
    table = quote(ProviderEvent._meta.db_table)
    for name in _INSERT_COLUMNS:  # the names are the table's columns: an error here, not in a request
        if ProviderEvent._meta.get_field(name).column != name:  # type: ignore[union-attr]
            raise TypeError(f"ProviderEvent.{name} is not a column of that name")
    columns = ", ".join(quote(name) for name in _INSERT_COLUMNS)
    return f"INSERT INTO {table} ({columns}) SELECT {columns} FROM json_populate_recordset(NULL::{table}, %s::json)"


def _insert_rows(rows: list[dict[str, Any]]) -> None:
    """One INSERT of ``rows``, without the ORM's per-save machinery (no model instances, no pk read back).

    Server-side binding of a statement prepared once per connection: PostgreSQL skips parse and
    plan. Signals: ``ProviderEvent`` has no save receivers.
    """
    conn = connections[DEFAULT_DB_ALIAS]
    sql = _insert_statement(conn.vendor)
    batch = json.dumps(rows)
    conn.ensure_connection()
    conn.validate_no_broken_transaction()
    with conn.wrap_database_errors, psycopg.Cursor(conn.connection) as cursor:
        cursor.execute(sql, [batch], prepare=True)


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

    def insert(self, rows: list[dict[str, Any]], alongside: tuple[Alongside, ...] = ()) -> None:
        slot = _Slot(rows, alongside)
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
        finish: Callable[[], None] = _nothing
        try:
            # One write for every caller's side writes, out before the INSERT; their answers change no
            # caller's outcome, so they are read after the others are woken (not on everyone's path).
            finish = send_alongside(write for s in batch for write in s.alongside)
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
            finish()


class _Slot:
    __slots__ = ("alongside", "done", "failed", "rows")

    def __init__(self, rows: list[dict[str, Any]], alongside: tuple[Alongside, ...]) -> None:
        self.rows = rows
        self.alongside = alongside
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
