"""Set different values on many message rows in one statement."""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connection

from campaigns.models import Message


def bulk_set(rows: Sequence[dict], fields: Sequence[str]) -> None:
    """``rows`` are dicts with ``id`` and every name in ``fields``.

    On PostgreSQL this is one ``UPDATE … FROM (VALUES …)``; elsewhere Django's
    ``bulk_update`` (a CASE per field), which is fine for the embedded default.
    """
    if not rows:
        return
    if connection.vendor != "postgresql":
        objs = [Message(pk=r["id"], **{f: r[f] for f in fields}) for r in rows]
        Message.objects.bulk_update(objs, fields, batch_size=500)
        return
    table = Message._meta.db_table
    columns = {f: Message._meta.get_field(f) for f in fields}
    casts = {f: col.db_type(connection) for f, col in columns.items()}
    placeholders = "(" + ", ".join(["%s::bigint"] + [f"%s::{casts[f]}" for f in fields]) + ")"
    values_sql = ", ".join([placeholders] * len(rows))
    params: list = []
    for r in rows:
        params.append(r["id"])
        for f in fields:
            params.append(columns[f].get_db_prep_save(r[f], connection))
    assignments = ", ".join(f'"{columns[f].column}" = v."{f}"' for f in fields)
    names = ", ".join(["id"] + [f'"{f}"' for f in fields])
    sql = f'UPDATE "{table}" AS m SET {assignments} FROM (VALUES {values_sql}) AS v({names}) WHERE m.id = v.id'
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
