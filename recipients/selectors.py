"""Reads for recipients."""

from __future__ import annotations

from django.db import connection

from recipients.models import Recipient


def attribute_keys_for_lists(*, list_ids: list[int], sample: int = 1000) -> set[str]:
    """Attribute names seen on members of the lists (a sample, to keep it cheap)."""
    if not list_ids:
        return set()
    keys: set[str] = set()
    if connection.vendor == "postgresql":
        marks = ", ".join(["%s"] * len(list_ids))
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT DISTINCT jsonb_object_keys(r.attributes) FROM recipients_recipient r "
                f"WHERE r.id IN (SELECT recipient_id FROM recipients_membership WHERE recipient_list_id IN ({marks}) LIMIT %s)",
                [*list_ids, sample],
            )
            return {row[0] for row in cursor.fetchall()}
    for attrs in Recipient.objects.filter(memberships__recipient_list_id__in=list_ids).values_list(
        "attributes", flat=True
    )[:sample]:
        keys.update((attrs or {}).keys())
    return keys
