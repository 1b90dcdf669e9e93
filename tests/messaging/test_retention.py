"""Retention: bodies, then whole messages, inbound texts and import files go once old; counters, costs
and consent events stay."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from campaigns.models import Campaign
from campaigns.selectors import campaign_stats
from messaging.models import Message, MessageStatus
from providers.models import ProviderEvent
from recipients.models import ConsentEvent, ImportJob, InboundMessage
from recipients.retention import Cutoffs, purge_expired
from recipients.services import recipient_set_consent

pytestmark = pytest.mark.django_db
S = MessageStatus


def aged(days: float, **fields):
    fields.setdefault("status", S.DELIVERED)
    fields.setdefault("kind", Message.Kind.SINGLE)
    message = Message.objects.create(to="+14155552671", body="secret text", **fields)
    Message.objects.filter(pk=message.pk).update(created_at=timezone.now() - timedelta(days=days))
    return message


def test_bodies_go_after_their_age_and_whole_rows_after_theirs(settings):
    settings.RETENTION_MESSAGE_BODY_DAYS, settings.RETENTION_MESSAGE_DAYS = 30, 400
    fresh, old_body, ancient = aged(1), aged(31, media_urls=["https://e.example/a.png"]), aged(401)
    in_flight = aged(500, status=S.SENDING)  # never touched before it is final

    counts = purge_expired(batch=1)  # batches of one: the loop, not one statement, does the work

    assert counts["bodies_cleared"] == 2 and counts["messages_deleted"] == 1
    fresh.refresh_from_db()
    old_body.refresh_from_db()
    assert fresh.body == "secret text"
    assert (old_body.body, old_body.media_urls, old_body.status) == ("", [], S.DELIVERED)
    assert not Message.objects.filter(pk=ancient.pk).exists()
    assert Message.objects.get(pk=in_flight.pk).body == "secret text"
    assert purge_expired() == dict.fromkeys(counts, 0)  # idempotent


def test_campaign_counters_costs_and_consent_events_survive_the_purge(settings, bob, make_campaign, make_recipients):
    settings.RETENTION_MESSAGE_DAYS = 1
    (person,) = make_recipients(1)
    recipient_set_consent(recipient=person, status="opted_out", channel="sms", evidence="STOP")
    ConsentEvent.objects.update(created_at=timezone.now() - timedelta(days=3650))
    campaign = make_campaign(bob, status=Campaign.Status.COMPLETED, recipient_total=1)
    from campaigns import counters

    counters.add_deltas({(campaign.pk, "delivered"): 1})
    counters.record_costs([(campaign.pk, "USD", 6500, 1)])
    aged(2, campaign=campaign, kind=Message.Kind.CAMPAIGN, recipient=person, cost_micros=6500, cost_currency="USD")
    events_before = ConsentEvent.objects.count()

    purge_expired()

    assert not Message.objects.filter(campaign=campaign).exists()
    stats = campaign_stats(campaign=campaign)
    assert stats["counts"]["delivered"] == 1 and stats["cost"]["actual_micros"] == 6500
    assert ConsentEvent.objects.count() == events_before


def test_inbound_texts_applied_reports_and_import_files_go_after_their_age(settings, tmp_path, bob):
    settings.RETENTION_INBOUND_DAYS, settings.RETENTION_IMPORT_FILES_HOURS = 10, 2
    old_in = InboundMessage.objects.create(provider="plivo", sender="+14155552671", to="+14155550100", text="hi")
    InboundMessage.objects.filter(pk=old_in.pk).update(received_at=timezone.now() - timedelta(days=11))
    new_in = InboundMessage.objects.create(provider="plivo", sender="+14155552671", to="+14155550100", text="yo")
    applied = ProviderEvent.objects.create(provider="plivo", kind="status", processed_at=timezone.now())
    waiting = ProviderEvent.objects.create(provider="plivo", kind="status")
    ProviderEvent.objects.update(received_at=timezone.now() - timedelta(days=60))
    upload = tmp_path / "upload.csv"
    upload.write_text("phone\n+14155552671\n")
    job = ImportJob.objects.create(
        created_by=bob,
        file=str(upload),
        status=ImportJob.Status.COMPLETED,
        finished_at=timezone.now() - timedelta(hours=3),
    )

    call_command("purge_expired_data", stdout=open("/dev/null", "w"))

    assert list(InboundMessage.objects.values_list("pk", flat=True)) == [new_in.pk]
    assert list(ProviderEvent.objects.values_list("pk", flat=True)) == [waiting.pk]
    assert not ProviderEvent.objects.filter(pk=applied.pk).exists()
    assert not upload.exists()
    job.refresh_from_db()
    assert job.file == ""


def test_cutoffs_follow_the_settings(settings):
    settings.RETENTION_MESSAGE_BODY_DAYS, settings.RETENTION_IMPORT_FILES_HOURS = 7, 5
    now = timezone.now()
    cutoffs = Cutoffs.from_settings(now)
    assert cutoffs.message_bodies == now - timedelta(days=7)
    assert cutoffs.import_files == now - timedelta(hours=5)
