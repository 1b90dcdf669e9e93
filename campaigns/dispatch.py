"""Creating message rows set-based, and feeding them to workers a few batches ahead.

Launch inserts rows with INSERT … SELECT in chunks of recipients, so the first
batches go out while later rows are still being created. Dispatch hands out
batches of ids, keeping only ``SMS_BATCHES_AHEAD`` batches queued per campaign
(backpressure: the broker never holds a million ids). Each finished batch tops
the queue up again; beat's sweeper repairs a chain broken by a lost task.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.utils import timezone

from campaigns.counters import add_deltas
from campaigns.models import Campaign, Message, MessageStatus

logger = logging.getLogger(__name__)
S = MessageStatus


def _targets_sql(list_ids: list[int]) -> tuple[str, list]:
    marks = ", ".join(["%s"] * len(list_ids))
    sql = (
        "FROM recipients_recipient r WHERE r.id > %s AND r.consent_status = 'opted_in' "
        "AND EXISTS (SELECT 1 FROM recipients_membership mm WHERE mm.recipient_id = r.id "
        f"AND mm.recipient_list_id IN ({marks}))"
    )
    return sql, list_ids


def materialize_chunk(*, campaign: Campaign, list_ids: list[int], chunk: int | None = None) -> int:
    """Create the next chunk of message rows. Returns how many were inserted; sets ``materialized`` at the end."""
    chunk = chunk or settings.SMS_LAUNCH_CHUNK
    where, where_params = _targets_sql(list_ids)
    now = timezone.now()
    due = max(campaign.send_at or now, now)
    jsonb = "CAST(%s AS jsonb)"
    with transaction.atomic():
        locked = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if locked.materialized or locked.status not in {
            Campaign.Status.SENDING,
            Campaign.Status.PAUSED,
        }:
            return 0
        cursor_from = locked.materialized_through
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT MAX(id) FROM (SELECT r.id {where} ORDER BY r.id LIMIT %s) t",
                [cursor_from, *where_params, chunk],
            )
            upto = cursor.fetchone()[0]
            inserted = 0
            if upto is not None:
                cursor.execute(
                    'INSERT INTO campaigns_message (campaign_id, recipient_id, kind, "to", sender, provider, body, '
                    "media_urls, segments, status, provider_message_id, error_code, error_text, attempts, "
                    "created_at, due_at) "
                    f"SELECT %s, r.id, 'campaign', r.phone, '', '', '', {jsonb}, 0, 'pending', '', '', '', 0, %s, %s "
                    f"{where} AND r.id <= %s ON CONFLICT DO NOTHING",
                    [campaign.pk, "[]", now, due, cursor_from, *where_params, upto],
                )
                inserted = cursor.rowcount
        fields = {
            "materialized_through": upto or cursor_from,
            "recipient_total": locked.recipient_total + inserted,
        }
        if upto is None:
            fields["materialized"] = True
        Campaign.objects.filter(pk=campaign.pk).update(**fields)
        if inserted:
            add_deltas({(campaign.pk, "waiting"): inserted})
    return inserted


def dispatch(*, campaign_id: int | None, now=None) -> int:
    """Queue batches of due, undispatched rows until ``SMS_BATCHES_AHEAD`` batches wait. Returns ids queued."""
    from campaigns.tasks import send_batch

    now = now or timezone.now()
    batch = settings.SMS_BATCH_SIZE
    room = settings.SMS_BATCHES_AHEAD * batch
    with transaction.atomic():
        if campaign_id is not None:
            campaign = Campaign.objects.select_for_update(skip_locked=True).filter(pk=campaign_id).first()
            if campaign is None or campaign.status != Campaign.Status.SENDING:
                return 0  # another dispatcher holds it, or it is not sending
        queued = Message.objects.filter(campaign_id=campaign_id, status=S.PENDING, enqueued_at__isnull=False)
        room -= queued.count()
        if room < batch // 2:
            return 0
        ids = list(
            Message.objects.filter(campaign_id=campaign_id, status=S.PENDING, enqueued_at__isnull=True, due_at__lte=now)
            .order_by("due_at", "id")
            .values_list("id", flat=True)[:room]
        )
        if not ids:
            return 0
        Message.objects.filter(pk__in=ids).update(enqueued_at=now)
        batches = [ids[i : i + batch] for i in range(0, len(ids), batch)]
        transaction.on_commit(lambda: [send_batch.delay(b) for b in batches])
    return len(ids)


def requeue_stale(*, now=None) -> int:
    """Rows queued long ago but never claimed lost their task (a broker restart): queue them again."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.SMS_REDISPATCH_SECONDS)
    return Message.objects.filter(status=S.PENDING, enqueued_at__lt=cutoff).update(enqueued_at=None)


def materializing(campaign_id: int, *, refresh: bool = False) -> bool:
    """A short-lived mark that a launch task is creating rows, so beat does not start a second one."""
    key = f"campaign:{campaign_id}:materializing"
    if refresh:
        cache.set(key, 1, timeout=60)
        return True
    return bool(cache.get(key))
