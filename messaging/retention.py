"""Retention for outbound messages and raw provider events: bodies first, then whole rows.

Only finished messages are touched (a message still in flight keeps everything it
needs to be sent and reconciled). Work is done in id-ordered batches, each its own
short transaction, so a purge never holds locks on millions of rows. Campaign
counters and costs live in ``campaigns.CampaignCounter`` and are not affected.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import QuerySet

from messaging.models import FINAL_STATUSES, Message
from providers.models import ProviderEvent

FINAL = [s.value for s in FINAL_STATUSES]


@dataclass
class PurgeResult:
    bodies_cleared: int = 0
    messages_deleted: int = 0
    provider_events_deleted: int = 0


def purge_messages(*, body_cutoff: datetime, row_cutoff: datetime, batch: int, max_batches: int = 1000) -> PurgeResult:
    result = PurgeResult()
    result.bodies_cleared = _in_batches(
        lambda: Message.objects.filter(created_at__lt=body_cutoff, status__in=FINAL).exclude(body="", media_urls=[]),
        lambda ids: Message.objects.filter(pk__in=ids).update(body="", media_urls=[]),
        batch=batch,
        max_batches=max_batches,
    )
    result.messages_deleted = _in_batches(
        lambda: Message.objects.filter(created_at__lt=row_cutoff, status__in=FINAL),
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
