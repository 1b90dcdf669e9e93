"""The one function through which message statuses change, keeping campaign counters in step."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from django.db import connection, transaction

from messaging import hooks
from messaging.bulk import db_value, message_field, unnest_values
from messaging.models import Message, MessageStatus
from messaging.signals import messages_moved
from providers.db import retry_on_deadlock
from smsportal import pgarray

S = MessageStatus
RANK = {
    S.PENDING: 0,
    S.CLAIMED: 1,
    S.SENDING: 2,
    S.UNKNOWN: 3,
    S.QUEUED: 4,
    S.SENT: 5,
    S.DELIVERED: 9,
    S.UNDELIVERED: 9,
    S.FAILED: 9,
    S.SKIPPED: 9,
    S.CANCELLED: 9,
    S.EXPIRED: 9,
}


def earlier_than(status: str) -> list[str]:
    """Statuses a message may move forward from, to reach ``status``."""
    return [s.value for s, rank in RANK.items() if rank < RANK[S(status)]]


def move(
    *, ids: Iterable[int], to: str, allowed_from: Sequence[str], **fields: object
) -> list[tuple[int, int | None, str]]:
    """Move the messages among ``ids`` whose status is in ``allowed_from`` to ``to``.

    Returns ``(id, campaign_id, old_status)`` for the rows that moved. Rows in
    any other status are left alone, which is what makes every caller idempotent.
    ``fields`` are set on the rows that move.
    """
    ids = list(ids)
    if not ids:
        return []
    # Outside a transaction, a deadlock or serialization failure runs the move again, not the batch.
    return retry_on_deadlock(lambda: _move(ids, to, allowed_from, fields=fields), what="move")


def set_and_move(
    *, rows: Sequence[Mapping[str, Any]], fields: Sequence[str], to: str, allowed_from: Sequence[str]
) -> list[tuple[int, int | None, str]]:
    """:func:`messaging.bulk.bulk_set` of ``rows`` then :func:`move` of their ids, in one statement.

    Each row's ``fields`` are written whatever its status (as ``bulk_set`` does); only the rows
    whose status is in ``allowed_from`` move. The send path writes each message twice per send
    instead of four times (PostgreSQL's CPU per message is mostly these row writes).
    """
    if not rows:
        return []
    return retry_on_deadlock(
        lambda: _move([r["id"] for r in rows], to, allowed_from, values=(rows, fields)), what="set_and_move"
    )


def _move(
    ids: list[int],
    to: str,
    allowed_from: Sequence[str],
    *,
    fields: Mapping[str, object] | None = None,
    values: tuple[Sequence[Mapping[str, Any]], Sequence[str]] | None = None,
) -> list[tuple[int, int | None, str]]:
    table = Message._meta.db_table
    id_array = pgarray.ints(ids)
    statuses = pgarray.array(list(allowed_from))
    params: list[Any] = []
    ctes = []
    assignments: list[str] = []
    if values is not None:
        cte, arrays, assignments = unnest_values(*values)
        ctes.append(cte)
        params += arrays
        # every row is locked and written; only those in allowed_from change status
        ctes.append(
            f'locked AS (SELECT id, campaign_id, status FROM "{table}" WHERE id = ANY(%s::bigint[]) ORDER BY id FOR UPDATE)'
        )
        params.append(id_array)
        assignments.append("status = CASE WHEN locked.status = ANY(%s::text[]) THEN %s ELSE m.status END")
        params += [statuses, to]
        join = "FROM locked, v WHERE m.id = locked.id AND m.id = v.id AND m.id = ANY(%s::bigint[])"
        params_join = [id_array]
        moved = "locked.status = ANY(%s::text[])"
        params_after = [statuses]
    else:
        # Locked in id order, as every writer of messages does: two writers then queue, not deadlock.
        ctes.append(
            f'locked AS (SELECT id, campaign_id, status FROM "{table}" '
            "WHERE id = ANY(%s::bigint[]) AND status = ANY(%s::text[]) ORDER BY id FOR UPDATE)"
        )
        params += [id_array, statuses]
        assignments.append("status = %s")
        params.append(to)
        for name, value in (fields or {}).items():
            col = message_field(name)
            assignments.append(f'"{col.column}" = %s')
            params.append(db_value(col, value))
        join = "FROM locked WHERE m.id = locked.id AND m.id = ANY(%s::bigint[])"
        params_join = [id_array]
        moved = "true"
        params_after = []
    sql = (
        f"WITH {', '.join(ctes)} "
        f'UPDATE "{table}" AS m SET {", ".join(assignments)} {join} '
        f"RETURNING m.id, m.campaign_id, locked.status, {moved}"
    )
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(sql, params + params_join + params_after)
            found = cursor.fetchall()
        rows = sorted((pk, campaign_id, old) for pk, campaign_id, old, did_move in found if did_move)
        if rows:
            hooks.campaigns().record_transitions((campaign_id, old, to) for _, campaign_id, old in rows)
            messages_moved.send(sender=Message, rows=rows, to=to)
    return rows
