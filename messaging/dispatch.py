"""Feeding due messages to workers a few batches ahead, and repairing chains that broke.

Dispatch hands out batches of ids, keeping only ``SMS_BATCHES_AHEAD`` batches
queued per campaign (backpressure: the broker never holds a million ids). Each
finished batch tops the queue up again; the sweeper repairs a chain broken by a
lost task. One-off messages (no campaign) are queued as they are created and
only pass through here when their task was lost.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from messaging import tasks
from messaging.models import Message, MessageStatus

S = MessageStatus


def queue_due(*, campaign_id: int | None, now: datetime | None = None) -> int:
    """Queue batches of due, undispatched rows until ``SMS_BATCHES_AHEAD`` batches wait. Returns ids queued.

    For a campaign, the caller holds the campaign's row lock and knows it is sending.
    """
    now = now or timezone.now()
    batch = settings.SMS_BATCH_SIZE
    room = settings.SMS_BATCHES_AHEAD * batch
    with transaction.atomic(savepoint=False):  # inside the campaign's lock: no savepoint round trips
        queued = Message.objects.filter(campaign=campaign_id, status=S.PENDING, enqueued_at__isnull=False)
        room -= queued.count()
        if room < batch // 2:
            return 0
        ids = list(
            Message.objects.filter(campaign=campaign_id, status=S.PENDING, enqueued_at__isnull=True, due_at__lte=now)
            .order_by("due_at", "id")
            .values_list("id", flat=True)[:room]
        )
        if not ids:
            return 0
        # One array parameter, not 3,000 placeholders (the stubs type a custom lookup as the field's type).
        Message.objects.filter(pk__any=ids).update(enqueued_at=now)  # type: ignore[misc]
        batches = [ids[i : i + batch] for i in range(0, len(ids), batch)]
        transaction.on_commit(lambda: [tasks.send_batch.delay(b) for b in batches])
    return len(ids)


def requeue_stale(*, now: datetime | None = None) -> int:
    """Rows queued long ago but never claimed lost their task (a broker restart): queue them again."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.SMS_REDISPATCH_SECONDS)
    return Message.objects.filter(status=S.PENDING, enqueued_at__lt=cutoff).update(enqueued_at=None)
