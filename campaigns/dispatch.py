"""A campaign's messages: created set-based just ahead of the senders, and handed to the send path a few batches ahead.

Launch creates no rows itself: ``dispatch`` locks the campaign and, while it is sending,
lets ``messaging.dispatch`` queue the next batches (backpressure: the broker never holds
a million ids). When the rows that exist do not fill the room, the next recipients' rows
are made there with one INSERT … SELECT, already marked queued (``create_rows``). So rows
are made at the senders' pace, in small committed chunks, and never compete with sending;
a pause or a cancel stops making them, and an opt-out before a recipient's turn means no row.
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from accounts.selectors import grants_in_force
from campaigns.audience import audience, audience_as_of
from campaigns.counters import add_deltas
from campaigns.models import Campaign
from messaging import dispatch as messaging_dispatch
from messaging import pacing
from messaging.models import Message
from messaging.partitions import campaign_month

logger = logging.getLogger(__name__)


def materialize_chunk(*, campaign: Campaign, list_ids: list[int], chunk: int | None = None) -> list[int]:
    """Create the next chunk of rows (not queued). Returns their ids; sets ``materialized`` at the end."""
    with transaction.atomic():
        locked = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if locked.materialized or locked.status not in {Campaign.Status.SENDING, Campaign.Status.PAUSED}:
            return []
        return create_rows(campaign=locked, list_ids=list_ids, limit=chunk or settings.SMS_LAUNCH_CHUNK)


def create_rows(
    *, campaign: Campaign, list_ids: list[int], limit: int, enqueued_at: datetime | None = None
) -> list[int]:
    """Rows for the next ``limit`` recipients after the launch cursor, in one statement. Returns the new ids.

    The caller holds the campaign's row lock (so the cursor has one writer) and commits the rows
    with the cursor. A recipient already holding a row is skipped (UNIQUE(campaign, recipient)).
    """
    now = timezone.now()
    due = max(campaign.send_at or now, now)
    cursor_from = campaign.materialized_through
    # One month for all the campaign's rows: the unique key (campaign, recipient, month) is then exactly once.
    month = campaign_month(launched_at=campaign.launched_at, created_at=campaign.created_at)
    # Rows are made as it sends, so someone added to a list later must not be picked up mid-run.
    since = audience_as_of(launched_at=campaign.launched_at, send_at=campaign.send_at)
    people = (
        audience(list_ids=list_ids, after=cursor_from, members_since=since).order_by("pk").values("id", "phone")[:limit]
    )
    select, params = people.query.sql_with_params()
    with connection.cursor() as cursor:
        # One round trip: pick the recipients, insert their rows, answer how far the cursor moved.
        cursor.execute(
            f"WITH picked AS ({select}), made AS ("
            f'INSERT INTO {Message._meta.db_table} (campaign_id, recipient_id, kind, "to", sender, provider, '
            "body, media_urls, segments, status, provider_message_id, error_code, error_text, attempts, "
            "created_at, due_at, enqueued_at, month) "
            "SELECT %s, r.id, 'campaign', r.phone, '', '', '', CAST(%s AS jsonb), 0, 'pending', '', '', '', 0, "
            "%s, %s, %s, %s FROM picked r ON CONFLICT DO NOTHING RETURNING id) "
            "SELECT (SELECT count(*) FROM picked), (SELECT max(id) FROM picked), ARRAY(SELECT id FROM made ORDER BY id)",
            [*params, campaign.pk, "[]", now, due, enqueued_at, month],
        )
        picked, upto, made = cursor.fetchone()
    ids: list[int] = list(made)
    fields: dict[str, object] = {"recipient_total": campaign.recipient_total + len(ids)}
    if upto is not None:
        fields["materialized_through"] = upto
    if picked < limit:
        fields["materialized"] = True  # fewer than asked for: nobody is left after the cursor
    Campaign.objects.filter(pk=campaign.pk).update(**fields)
    for name, value in fields.items():
        setattr(campaign, name, value)
    if ids:
        add_deltas({(campaign.pk, "waiting"): len(ids)})
    return ids


def dispatch(*, campaign_id: int, now: datetime | None = None, wait: bool = False) -> int:
    """Queue the campaign's next due batches if it is sending, making its next rows when needed. Returns ids queued.

    A batch's dispatch skips a campaign whose row is locked (the holder is another dispatcher, or a
    write that some batch's dispatch follows). ``wait``: the start of a campaign, which nothing else
    follows, waits for the lock instead (a launch's estimate, written just after it commits, held
    the row at the first dispatch and the campaign never started until beat's sweep).
    """
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update(skip_locked=not wait).filter(pk=campaign_id).first()
        if campaign is None or campaign.status != Campaign.Status.SENDING:
            return 0  # another dispatcher holds it, or it is not sending
        pool = grants_in_force().filter(campaigns=campaign).values_list("max_mps", "provider")
        batch_size = pacing.batch_size(pool)
        if campaign.materialized:
            return messaging_dispatch.queue_due(campaign_id=campaign_id, now=now, batch_size=batch_size)

        def create(room: int, at: datetime) -> list[int]:
            if campaign.send_at and campaign.send_at > at:
                return []  # launched a few seconds ahead of its time: the sweeper comes back
            list_ids = list(campaign.lists.values_list("pk", flat=True))
            return create_rows(campaign=campaign, list_ids=list_ids, limit=room, enqueued_at=at)

        return messaging_dispatch.queue_due(campaign_id=campaign_id, now=now, create=create, batch_size=batch_size)
