"""A campaign's messages: created set-based at launch, then handed to the send path a few batches ahead.

Launch inserts rows with INSERT … SELECT in chunks of recipients, so the first
batches go out while later rows are still being created. ``dispatch`` locks the
campaign and, while it is sending, lets ``messaging.dispatch`` queue the next
batches (backpressure: the broker never holds a million ids).
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.utils import timezone

from campaigns.audience import audience
from campaigns.counters import add_deltas
from campaigns.models import Campaign
from messaging import dispatch as messaging_dispatch
from messaging import pacing
from messaging.models import Message

logger = logging.getLogger(__name__)


def materialize_chunk(*, campaign: Campaign, list_ids: list[int], chunk: int | None = None) -> int:
    """Create the next chunk of message rows. Returns how many were inserted; sets ``materialized`` at the end."""
    chunk = chunk or settings.SMS_LAUNCH_CHUNK
    now = timezone.now()
    due = max(campaign.send_at or now, now)
    with transaction.atomic():
        locked = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if locked.materialized or locked.status not in {
            Campaign.Status.SENDING,
            Campaign.Status.PAUSED,
        }:
            return 0
        cursor_from = locked.materialized_through
        people = audience(list_ids=list_ids).filter(pk__gt=cursor_from).order_by("pk")
        ids = list(people.values_list("pk", flat=True)[:chunk])
        upto = ids[-1] if ids else None
        inserted = 0
        if upto is not None:
            select, params = people.filter(pk__lte=upto).values("id", "phone").query.sql_with_params()
            with connection.cursor() as cursor:
                cursor.execute(
                    f'INSERT INTO {Message._meta.db_table} (campaign_id, recipient_id, kind, "to", sender, provider, '
                    "body, media_urls, segments, status, provider_message_id, error_code, error_text, attempts, "
                    "created_at, due_at) "
                    "SELECT %s, r.id, 'campaign', r.phone, '', '', '', CAST(%s AS jsonb), 0, 'pending', '', '', '', 0, "
                    f"%s, %s FROM ({select}) r ON CONFLICT DO NOTHING",
                    [campaign.pk, "[]", now, due, *params],
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


def dispatch(*, campaign_id: int, now: datetime | None = None) -> int:
    """Queue the campaign's next due batches if it is sending. Returns ids queued."""
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update(skip_locked=True).filter(pk=campaign_id).first()
        if campaign is None or campaign.status != Campaign.Status.SENDING:
            return 0  # another dispatcher holds it, or it is not sending
        pool = campaign.senders.filter(is_active=True).values_list("max_mps", "provider")
        return messaging_dispatch.queue_due(campaign_id=campaign_id, now=now, batch_size=pacing.batch_size(pool))


def materializing(campaign_id: int, *, refresh: bool = False) -> bool:
    """A short-lived mark that a launch task is creating rows, so beat does not start a second one."""
    key = f"campaign:{campaign_id}:materializing"
    if refresh:
        cache.set(key, 1, timeout=60)
        return True
    return bool(cache.get(key))
