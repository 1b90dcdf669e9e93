"""Set different values on many message rows in one statement."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import Field

from messaging.models import Message
from providers.db import retry_on_deadlock
from smsportal import pgarray

_PLAIN = (str, int, float, bool, type(None))


def db_value(col: Field[Any, Any], value: Any) -> Any:
    """psycopg adapts plain values itself; Django's per-value preparation costs ~20 µs each."""
    if isinstance(value, _PLAIN) or (isinstance(value, datetime) and value.tzinfo is not None):
        return value
    return col.get_db_prep_save(value, connection)


def message_field(name: str) -> Field[Any, Any]:
    """``Message``'s field ``name`` (``get_field`` may also return a reverse relation, which has no column)."""
    field = Message._meta.get_field(name)
    if not isinstance(field, Field):
        raise TypeError(f"Message.{name} is not a concrete field")
    return field


def unnest_values(rows: Sequence[Mapping[str, Any]], fields: Sequence[str]) -> tuple[str, list[Any], list[str]]:
    """``v``, a CTE of ``rows``' ids and ``fields`` (one array parameter per column), its parameters,
    and the ``SET`` assignments that copy ``v``'s values into the messages table aliased ``m``."""
    # One array parameter per column (unnest), not one placeholder per value: a 500-row
    # VALUES list has 4,000 placeholders, and parsing that query string client-side
    # (psycopg does not cache long queries) cost a third of a send batch's CPU.
    arrays: list[Any] = [pgarray.ints(r["id"] for r in rows)]
    casts = ["%s::bigint[]"]
    assignments = []
    for f in fields:
        col = message_field(f)
        db_type = col.db_type(connection)
        if db_type == "jsonb":
            # a text[] of JSON documents, cast per element after unnest
            arrays.append(pgarray.array([None if r[f] is None else json.dumps(r[f]) for r in rows]))
            casts.append("%s::text[]")
            assignments.append(f'"{col.column}" = v."{f}"::jsonb')
        else:
            arrays.append(pgarray.array([db_value(col, r[f]) for r in rows]))
            casts.append(f"%s::{db_type}[]")
            assignments.append(f'"{col.column}" = v."{f}"')
    names = ", ".join(["id"] + [f'"{f}"' for f in fields])
    return f"v AS (SELECT * FROM unnest({', '.join(casts)}) AS v({names}))", arrays, assignments


def bulk_set(rows: Sequence[Mapping[str, Any]], fields: Sequence[str]) -> None:
    """``rows`` are dicts with ``id`` and every name in ``fields``.

    One ``UPDATE … FROM unnest(arrays)``, locking its rows in id order; retried on a deadlock.
    """
    if not rows:
        return
    table = Message._meta.db_table
    values, arrays, assignments = unnest_values(rows, fields)
    # Rows are locked in id order first, as every other writer of messages does (transitions.move,
    # the status drain): two writers of the same rows then queue instead of deadlocking.
    sql = (
        f"WITH {values}, "
        f'locked AS (SELECT id FROM "{table}" WHERE id IN (SELECT id FROM v) ORDER BY id FOR UPDATE) '
        f'UPDATE "{table}" AS m SET {", ".join(assignments)} '
        f"FROM v WHERE m.id = v.id AND m.id IN (SELECT id FROM locked)"
    )

    def update() -> None:
        with connection.cursor() as cursor:
            cursor.execute(sql, arrays)

    # A deadlock or serialization failure aborts this one statement: run it again, not the batch.
    retry_on_deadlock(update, what="bulk_set")
