"""Retention for outbound messages and raw provider events: bodies first, then whole rows.

Only finished messages are touched (a message still in flight keeps everything it
needs to be sent and reconciled). A whole month partition whose every row is past the
row cutoff and finished is detached and dropped (messaging/partitions.py); what is left
(the boundary month, a month with an open message) is deleted in id-ordered batches,
each its own short transaction, so a purge never holds locks on millions of rows.
Campaign counters and costs live in ``campaigns.CampaignCounter`` and are not affected.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Q, QuerySet

from messaging import partitions
from messaging.models import FINAL_STATUSES, Message
from providers.models import ProviderEvent

FINAL = [s.value for s in FINAL_STATUSES]


@dataclass
class PurgeResult:
    bodies_cleared: int = 0
    messages_deleted: int = 0
    partitions_dropped: int = 0
    provider_events_deleted: int = 0


def _expired(row_cutoff: datetime) -> Q:
    """The one rule for which whole messages go: finished, and created before the cutoff."""
    return Q(created_at__lt=row_cutoff, status__in=FINAL)


def _drop_old_partitions(row_cutoff: datetime) -> tuple[int, int]:
    """Drop each month partition that holds only expired rows. Returns (partitions, rows) dropped."""
    dropped = rows = 0
    for candidate in partitions.partitions():
        if partitions.next_month(candidate.month) > partitions.month_start(row_cutoff):
            break  # this month and later may hold rows younger than the cutoff
        with partitions.layout_lock():
            partitions.hold_still(candidate)
            month_rows = partitions.rows_of(candidate.month)
            # Exact, not by the calendar: a campaign's rows carry its launch month but may be created later.
            if month_rows.exclude(_expired(row_cutoff)).exists():
                continue
            count = month_rows.count()
            partitions.drop_partition(candidate)
        dropped += 1
        rows += count
    return dropped, rows


def purge_messages(*, body_cutoff: datetime, row_cutoff: datetime, batch: int, max_batches: int = 1000) -> PurgeResult:
    result = PurgeResult()
    # Whole months first: their bodies need no clearing.
    result.partitions_dropped, result.messages_deleted = _drop_old_partitions(row_cutoff)
    result.bodies_cleared = _in_batches(
        lambda: Message.objects.filter(created_at__lt=body_cutoff, status__in=FINAL).exclude(body="", media_urls=[]),
        lambda ids: Message.objects.filter(pk__in=ids).update(body="", media_urls=[]),
        batch=batch,
        max_batches=max_batches,
    )
    result.messages_deleted += _in_batches(
        lambda: Message.objects.filter(_expired(row_cutoff)),
        lambda ids: Message.objects.filter(pk__in=ids).delete()[0],  # relay transcripts keep a null link
        batch=batch,
        max_batches=max_batches,
    )
    # Raw reports repeat the body and the numbers: they go with the bodies, once applied.
    result.provider_events_deleted = _in_batches(
        lambda: ProviderEvent.objects.filter(received_at__lt=body_cutoff, processed_at__isnull=False),
        lambda ids: ProviderEvent.objects.filter(pk__in=ids).delete()[0],
        batch=batch,
        max_batches=max_batches,
    )
    return result


def _in_batches(
    select: Callable[[], QuerySet[Any]], apply: Callable[[list[int]], int], *, batch: int, max_batches: int
) -> int:
    done = 0
    for _ in range(max_batches):
        with transaction.atomic():
            ids = list(select().order_by("pk").values_list("pk", flat=True)[:batch])
            if not ids:
                break
            done += apply(ids)
        if len(ids) < batch:
            break
    return done
