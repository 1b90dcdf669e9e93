"""A campaign's start waits for its row's lock; a batch's dispatch skips it (issue 21, launch race).

The launch stores its estimate just after it commits. When the first dispatch found the row
locked by that write, it skipped the campaign, as it skips one that another dispatcher holds, and
nothing else was coming: the campaign started only at beat's next sweep, or, with no beat, never.
"""

from __future__ import annotations

import threading

from django.db import connection, transaction
from django.utils import timezone

from campaigns import dispatch
from campaigns.models import Campaign
from campaigns.tasks import materialize
from messaging.models import Message


def _sending_campaign(settings, bob, make_sender, make_recipients, make_campaign) -> Campaign:
    settings.SMS_BATCH_SIZE = 2
    settings.SMS_BATCHES_AHEAD = 2
    make_recipients(6, recipient_list="everyone")
    campaign = make_campaign(bob, lists=["everyone"], senders=[make_sender(bob)])
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.SENDING, launched_at=timezone.now())
    return campaign


def _while_the_row_is_locked(campaign: Campaign, run):
    """``run()`` while another connection holds the campaign's row, as the launch's estimate write does."""
    locked, release = threading.Event(), threading.Event()

    def hold() -> None:
        try:
            with transaction.atomic():
                Campaign.objects.filter(pk=campaign.pk).update(audience_total=6)
                locked.set()
                release.wait(10)
        finally:
            connection.close()

    holder = threading.Thread(target=hold)
    holder.start()
    assert locked.wait(10)
    timer = threading.Timer(0.3, release.set)
    timer.start()
    try:
        return run()
    finally:
        release.set()
        holder.join()


def test_the_start_of_a_campaign_waits_for_its_locked_row_and_makes_its_first_rows(
    transactional_db, settings, bob, make_sender, make_recipients, make_campaign
):
    campaign = _sending_campaign(settings, bob, make_sender, make_recipients, make_campaign)

    _while_the_row_is_locked(campaign, lambda: materialize(campaign.pk))

    assert Message.objects.filter(campaign=campaign).exists()  # skipping it, the start made nothing


def test_a_batchs_dispatch_still_skips_a_locked_campaign(
    transactional_db, settings, bob, make_sender, make_recipients, make_campaign
):
    campaign = _sending_campaign(settings, bob, make_sender, make_recipients, make_campaign)

    queued = _while_the_row_is_locked(campaign, lambda: dispatch.dispatch(campaign_id=campaign.pk))

    assert queued == 0 and not Message.objects.filter(campaign=campaign).exists()
