"""The fake provider calling a live Django server, and the send engine over the Plivo backend."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns.models import Campaign
from messaging import engine
from messaging.models import Message, MessageStatus
from providers.backends import plivo
from providers.models import ProviderEvent
from providers.tasks import drain_status_events
from tests.conftest import wait_for
from tests.providers.conftest import sms

S = MessageStatus


@pytest.fixture
def live(fake, live_server, settings):
    """The fake provider with callbacks on, posting to the live server."""
    settings.PUBLIC_BASE_URL = live_server.url
    # Few callbacks at once: each live-server request thread holds a database connection.
    fake.configure(callbacks=True, callback_delay_s=0.05, callback_concurrency=4, callback_retries=3)
    return fake


def statuses(ids):
    drain_status_events()
    return dict(Message.objects.filter(pk__in=ids).values_list("pk", "status"))


@pytest.fixture
def campaign_messages(bob, make_sender, make_recipients, make_campaign):
    def make(n: int, provider: str = "plivo"):
        people = make_recipients(n, recipient_list="customers")
        sender = make_sender(bob, provider=provider)
        campaign = make_campaign(bob, lists=["customers"], senders=[sender], status=Campaign.Status.SENDING)
        rows = Message.objects.bulk_create([Message(campaign=campaign, recipient=p, to=p.phone) for p in people])
        return campaign, [m.pk for m in rows]

    return make


@pytest.mark.parametrize("provider", ["plivo", "flowroute"])
def test_signed_callbacks_from_the_fake_settle_a_message_whose_outcome_was_lost(live, provider):
    if provider == "flowroute":
        live.configure(rate_buffered=1.0)
    message = Message.objects.create(
        kind=Message.Kind.SINGLE, to="+14155552671", sender="+14155550100", provider=provider, status=S.SENDING
    )
    from providers.backends import flowroute

    backend = plivo.SMSBackend() if provider == "plivo" else flowroute.SMSBackend()
    (outcome,) = backend.send_messages([sms(ref=str(message.pk), provider=provider)])
    assert outcome.accepted
    # The worker "died" before recording the outcome: only the callbacks can settle it.
    Message.objects.filter(pk=message.pk).update(status=S.UNKNOWN)

    wait_for(lambda: statuses([message.pk])[message.pk] == S.DELIVERED, timeout=20, message="delivered")
    message.refresh_from_db()
    assert message.provider_message_id == outcome.provider_message_id
    expected = 2 if provider == "plivo" else 3  # Flowroute: submit, buffered, delivered
    # (plus, for Flowroute, the price read from its message record: receipts carry none)
    callbacks = ProviderEvent.objects.filter(message_ref=str(message.pk)).exclude(payload__has_key="message_record")
    assert callbacks.count() == expected
    assert live.stats()["callbacks_failed"] == 0


@pytest.mark.parametrize("provider", ["plivo", "flowroute"])
def test_inbound_from_the_fake_reaches_the_live_server(live, live_server, settings, provider):
    path = (
        f"/webhooks/plivo/{settings.PLIVO_WEBHOOK_SECRET}/inbound/"
        if provider == "plivo"
        else f"/webhooks/flowroute/{settings.FLOWROUTE_WEBHOOK_SECRET}/inbound/"
    )
    url = live_server.url + path

    answer = live.send_inbound(
        provider, "+14155552671", "+14155550100", "Look", media_urls=["https://m/1.jpg"], url=url
    )
    assert answer["status"] == 200, answer
    event = ProviderEvent.objects.get(kind="inbound")
    assert (event.provider, event.provider_message_id) == (provider, answer["id"])

    if provider == "plivo":
        forged = live.send_inbound(provider, "+14155552671", "+14155550100", "STOP", url=url, tamper_signature=True)
        assert forged["status"] == 403
    else:
        forged = live.send_inbound(
            provider, "+14155552671", "+14155550100", "STOP", url=url.replace("/flowroute/", "/flowroute/x")
        )
        assert forged["status"] == 403
    assert ProviderEvent.objects.count() == 1


def test_send_batch_over_plivo_ends_with_messages_delivered(live, settings, campaign_messages):
    settings.SMS_BACKEND = "providers.backends.live.SMSBackend"
    live.configure(duplicate_callbacks=0.5, out_of_order=0.5, seed=7)
    _, ids = campaign_messages(5)

    result = engine.send_batch(message_ids=ids)

    assert result.accepted == 5
    wait_for(lambda: set(statuses(ids).values()) == {S.DELIVERED}, timeout=30, message="all delivered")
    sent = live.messages(provider="plivo")
    assert len(sent) == 5 and live.duplicates() == []
    assert {m["url"] for m in sent} == {
        f"{settings.PUBLIC_BASE_URL}/webhooks/plivo/{settings.PLIVO_WEBHOOK_SECRET}/status/{pk}/" for pk in ids
    }
    assert all(m["text"].startswith("Hello P") for m in sent)
    assert set(Message.objects.filter(pk__in=ids).values_list("provider_message_id", flat=True)) == {
        m["id"] for m in sent
    }


@pytest.mark.django_db
def test_a_429_sends_the_message_back_with_retry_after_as_the_floor(fake, settings, campaign_messages):
    settings.SMS_BACKEND = "providers.backends.live.SMSBackend"
    fake.configure(rate_429=1.0, retry_after=30)
    _, ids = campaign_messages(2)

    result = engine.send_batch(message_ids=ids)

    assert result.retrying == 2
    for message in Message.objects.filter(pk__in=ids):
        assert message.status == S.PENDING and message.error_code == "429" and message.error_permanent is False
        assert message.due_at >= timezone.now() + timedelta(seconds=28)


@pytest.mark.django_db
def test_refused_credentials_pause_the_campaign_without_failing_messages(fake, settings, campaign_messages):
    settings.SMS_BACKEND = "providers.backends.live.SMSBackend"
    settings.PLIVO_AUTH_TOKEN = "wrong"
    campaign, ids = campaign_messages(3)

    engine.send_batch(message_ids=ids)

    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.PAUSED
    assert set(Message.objects.filter(pk__in=ids).values_list("status", flat=True)) == {S.PENDING}


@pytest.mark.django_db
def test_a_sync_opt_out_error_opts_the_recipient_out(fake, settings, campaign_messages):
    settings.SMS_BACKEND = "providers.backends.live.SMSBackend"
    _, ids = campaign_messages(1)
    message = Message.objects.get(pk=ids[0])
    fake.configure(fail_numbers={message.to: {"http": 400, "error": "destination number opted out"}})

    engine.send_batch(message_ids=ids)

    message.refresh_from_db()
    assert message.status == S.FAILED and message.error_permanent
    assert message.recipient.consent_status == "opted_out"
