"""Feeding due messages to workers a few batches ahead, and repairing chains that broke.

Dispatch hands out batches of ids, keeping only ``SMS_BATCHES_AHEAD`` batches
queued per campaign (backpressure: the broker never holds a million ids). Each
finished batch tops the queue up again; the sweeper repairs a chain broken by a
lost task. One-off messages (no campaign) are queued as they are created and
only pass through here when their task was lost.

A caller may also create rows on demand (``create``): a campaign's rows are made just
ahead of the senders, inserted already marked queued, so making them never competes
with sending for the database and no row is updated only to be marked queued.

Rows that waited already (a retry's backoff, a pause, a lost task) are queued ahead of
the batches of fresh rows sent in advance (``FRESH_PRIORITY``), so a retry goes out a
second or two after it falls due instead of behind ``SMS_BATCHES_AHEAD`` batches.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError, transaction
from django.utils import timezone

from messaging import partitions, tasks
from messaging.lookups import among
from messaging.models import Message, MessageStatus

S = MessageStatus
logger = logging.getLogger(__name__)

# Kombu's Redis transport serves priority 0 (the default: every other task) before 3, 6 and 9.
# Batches of freshly made rows go at 6, so the rows that waited already, and one-offs, replies
# and the sweepers' tasks, do not queue behind a campaign's batches sent in advance (issue 21:
# under faults each retry waited ~6 s behind them, and the campaign ended with a tail of retries).
FRESH_PRIORITY = 6


def queue_due(
    *,
    campaign_id: int | None,
    now: datetime | None = None,
    create: Callable[[int, datetime], list[int]] | None = None,
    batch_size: int | None = None,
) -> int:
    """Queue batches of due, undispatched rows until ``SMS_BATCHES_AHEAD`` batches wait. Returns ids queued.

    For a campaign, the caller holds the campaign's row lock and knows it is sending. When the
    existing rows do not fill the room, ``create(room_left, now)`` may add rows: it returns the
    ids of rows it inserted with ``enqueued_at=now``. ``batch_size`` defaults to ``SMS_BATCH_SIZE``
    (a paced campaign's is larger: messaging.pacing.batch_size).
    """
    now = now or timezone.now()
    batch = batch_size or settings.SMS_BATCH_SIZE
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
        if ids:
            Message.objects.filter(among(ids)).update(enqueued_at=now)  # one array parameter, not 3,000 placeholders
        waited = len(ids)  # due rows come first: their batches go ahead of the fresh ones
        if create is not None and len(ids) < room:
            made = create(room - len(ids), now)
            ids += made
        if not ids:
            if campaign_id is not None:
                _dispatch_when_due(campaign_id=campaign_id, now=now)
            return 0
        batches = [ids[i : i + batch] for i in range(0, len(ids), batch)]
        if len(batches) > 1 and len(batches[-1]) < batch // 2:
            # No runt at the end: a paced campaign's last batch would run alone, on few numbers.
            batches[-2:] = [batches[-2] + batches[-1]]
        # (a runt of retries alone, once every row is made, waits its turn: a stream of them
        # jumping the queue would hold back the campaign's last full batches)
        priorities = [
            0 if i * batch < waited and len(b) >= batch // 2 else FRESH_PRIORITY for i, b in enumerate(batches)
        ]
        grew = len(ids) > waited  # rows were made: their partition's statistics may be too few now

        def send_them() -> None:
            for b, p in zip(batches, priorities, strict=True):
                tasks.send_batch.apply_async((b,), priority=p)
            if grew:
                _refresh_statistics()

        transaction.on_commit(send_them)
    return len(ids)


def _refresh_statistics() -> None:
    try:
        partitions.refresh_statistics(at_most_every=partitions.STATISTICS_CHECK_SECONDS)
    except DatabaseError:  # the rows and their batches stand either way; autovacuum catches up
        logger.exception("could not refresh the message partitions' statistics")


# Beyond this, a retry's backoff is left to beat's sweep of campaigns (a broker holds a delayed task
# unacknowledged; well under the Redis transport's one-hour visibility timeout).
DISPATCH_LATER_MAX_SECONDS = 600


def _dispatch_when_due(*, campaign_id: int, now: datetime) -> None:
    """Nothing is due, but rows wait for a retry's backoff: dispatch again when the first falls due.

    Otherwise the last retries of a campaign wait for beat's next sweep, and with no beat
    (a worker-only deployment) for ever. One delayed task per campaign at a time.
    """
    due = (
        Message.objects.filter(campaign=campaign_id, status=S.PENDING, enqueued_at__isnull=True)
        .order_by("due_at")
        .values_list("due_at", flat=True)
        .first()
    )
    if due is None or settings.CELERY_TASK_ALWAYS_EAGER:  # (eager, a countdown would run it now: in a loop)
        return
    delay = max(0.0, (due - now).total_seconds()) + 0.05  # (a moment late rather than early)
    if delay <= DISPATCH_LATER_MAX_SECONDS and cache.add(dispatch_later_key(campaign_id), 1, timeout=int(delay) + 5):
        transaction.on_commit(lambda: tasks.dispatch_later.apply_async((campaign_id,), countdown=delay))


def dispatch_later_key(campaign_id: int) -> str:
    """Held while a campaign's delayed dispatch waits; the task drops it when it runs."""
    return f"campaign:{campaign_id}:dispatch-later"


def requeue_stale(*, now: datetime | None = None) -> int:
    """Rows queued long ago but never claimed lost their task (a broker restart): queue them again."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.SMS_REDISPATCH_SECONDS)
    return Message.objects.filter(status=S.PENDING, enqueued_at__lt=cutoff).update(enqueued_at=None)
