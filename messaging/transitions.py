"""The one function through which message statuses change, keeping campaign counters in step."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from django.db import transaction

from messaging import hooks
from messaging.models import Message, MessageStatus
from providers.db import retry_on_deadlock

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
    """
    ids = list(ids)
    if not ids:
        return []
    # Outside a transaction, a deadlock or serialization failure runs the move again, not the batch.
    return retry_on_deadlock(lambda: _move(ids, to, allowed_from, fields), what="move")


def _move(
    ids: list[int], to: str, allowed_from: Sequence[str], fields: dict[str, object]
) -> list[tuple[int, int | None, str]]:
    with transaction.atomic():
        # campaign_id is a nullable foreign key; the plugin types it as a plain int in values_list().
        rows: list[tuple[int, int | None, str]] = list(
            Message.objects.select_for_update(of=("self",))
            .filter(pk__in=ids, status__in=allowed_from)
            .order_by("pk")
            .values_list("pk", "campaign_id", "status")
        )
        if rows:
            Message.objects.filter(pk__in=[r[0] for r in rows]).update(status=to, **fields)
            hooks.campaigns().record_transitions((campaign_id, old, to) for _, campaign_id, old in rows)
    return rows
