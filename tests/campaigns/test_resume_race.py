"""A resume that commits while a queued batch is claiming the rows of its paused campaign."""

from __future__ import annotations

import threading

from django.db import connection
from django.utils import timezone

from campaigns.models import Campaign
from campaigns.services import campaign_resume
from messaging import engine
from messaging.models import Message
from messaging.tasks import send_batch
from providers.backends import locmem


def test_rows_a_batch_left_ready_while_a_resume_committed_are_still_sent(
    transactional_db, monkeypatch, bob, make_sender, make_recipients, make_campaign
):
    people = make_recipients(3, recipient_list="everyone")
    sender = make_sender(bob)
    campaign = make_campaign(bob, lists=["everyone"], senders=[sender])
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.PAUSED, materialized=True)
    ids = [
        Message.objects.create(
            campaign=campaign, recipient=p, to=p.phone, sender=sender.number, body="hi", enqueued_at=timezone.now()
        ).pk
        for p in people
    ]
    leave_ready = engine._leave_ready

    def resume_meanwhile(unclaimable):
        # The batch has seen the campaign paused and is leaving its rows ready (not yet committed),
        # when the resume commits and dispatches from another connection: to it the rows are still queued.
        left = leave_ready(unclaimable)

        def resume():
            try:
                campaign_resume(campaign=Campaign.objects.get(pk=campaign.pk), user=bob)
            finally:
                connection.close()

        thread = threading.Thread(target=resume)
        thread.start()
        thread.join()
        return left

    monkeypatch.setattr(engine, "_leave_ready", resume_meanwhile)
    send_batch(ids)
    monkeypatch.setattr(engine, "_leave_ready", leave_ready)

    assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.SENDING
    # Not left for the sweeper: the batch dispatched the campaign again once its claim committed.
    assert set(Message.objects.filter(pk__in=ids).values_list("status", flat=True)) == {"queued"}
    assert sorted(m.to for m in locmem.outbox) == sorted(p.phone for p in people)
