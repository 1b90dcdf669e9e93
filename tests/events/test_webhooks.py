"""Outbound event webhooks over real HTTP (issue 18.3), checked with an independent Standard Webhooks
implementation (the ``standardwebhooks`` package)."""

from __future__ import annotations

import time

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from accounts.models import AuditEvent
from events import tasks
from events.models import DeliveryAttempt, OutboxEvent, WebhookEndpoint
from events.services import endpoint_create, endpoint_update, event_publish, event_resend
from messaging.models import Message
from messaging.transitions import earlier_than, move
from recipients.sending import message_send_single

pytestmark = pytest.mark.usefixtures("fast_retries")


@pytest.fixture
def run_on_commit(django_capture_on_commit_callbacks):
    def run(fn, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return fn(*args, **kwargs)

    return run


@pytest.fixture
def endpoint(alice, receiver):
    return endpoint_create(actor=alice, url=receiver.url, description="CRM")


def send_one(bob, make_sender, run_on_commit, to="+14155552671") -> Message:
    if not bob.sender_grants.exists():
        make_sender(bob, number="+14155550100")
    message = run_on_commit(message_send_single, user=bob, to=to, body="Your code is 1234")
    message.refresh_from_db()
    return message


def deliver(message: Message, run_on_commit) -> None:
    run_on_commit(move, ids=[message.pk], to="delivered", allowed_from=earlier_than("delivered"))


def sweep_after_retry_delay() -> None:
    time.sleep(0.02)  # the retry schedule's 10 ms
    tasks.sweep()


def test_events_are_signed_per_standard_webhooks(endpoint, receiver, bob, make_sender, run_on_commit):
    message = send_one(bob, make_sender, run_on_commit)
    deliver(message, run_on_commit)
    assert [r["status"] for r in receiver.received] == [200, 200]
    verifier = Webhook(endpoint.secret)
    for request in receiver.received:
        headers = {k.lower(): v for k, v in request["headers"].items()}
        assert headers["webhook-signature"].startswith("v1,")
        verifier.verify(request["body"], headers)  # raises on a bad signature
    events = receiver.accepted()
    assert [e["type"] for e in events] == ["message.sent", "message.delivered"]
    assert events[0]["data"]["id"] == message.pk and events[0]["data"]["to"] == "+14155552671"
    assert events[1]["data"]["status"] == "delivered" and events[0]["timestamp"].endswith("Z")
    with pytest.raises(WebhookVerificationError):  # a tampered body fails the independent check
        Webhook(endpoint.secret).verify(request["body"].replace(b"delivered", b"failed"), headers)


def test_a_500_is_retried_and_the_retry_keeps_the_webhook_id(endpoint, receiver, bob, make_sender, run_on_commit):
    receiver.statuses = [500, 200]
    send_one(bob, make_sender, run_on_commit)
    event = OutboxEvent.objects.get()
    assert event.status == "pending" and event.last_error == "HTTP 500"
    endpoint.refresh_from_db()
    assert endpoint.failure_count == 1 and endpoint.retry_at is not None
    sweep_after_retry_delay()
    event.refresh_from_db()
    assert (event.status, event.attempts) == ("delivered", 2)
    assert [r["headers"]["webhook-id"] for r in receiver.received] == [event.webhook_id] * 2
    assert list(DeliveryAttempt.objects.filter(event=event).order_by("id").values_list("status_code", "succeeded")) == [
        (500, False),
        (200, True),
    ]
    endpoint.refresh_from_db()
    assert endpoint.failure_count == 0 and endpoint.retry_at is None


def test_repeated_failures_disable_the_endpoint_and_tell_the_admin(
    endpoint, receiver, alice, bob, make_sender, run_on_commit, client
):
    receiver.statuses = [503]
    send_one(bob, make_sender, run_on_commit)
    for _ in range(3):
        sweep_after_retry_delay()
    endpoint.refresh_from_db()
    assert not endpoint.is_active and "4 failed attempts" in endpoint.disabled_reason
    assert AuditEvent.objects.filter(action="webhook.disabled", target_id=str(endpoint.pk)).exists()
    assert len(receiver.received) == 4
    sweep_after_retry_delay()
    assert len(receiver.received) == 4  # disabled: no more attempts
    assert OutboxEvent.objects.get().status == "pending"  # nothing dropped
    alice.is_staff = alice.is_superuser = True
    alice.save()
    client.force_login(alice)
    page = client.get("/admin/events/webhookendpoint/").content.decode()
    assert "disabled automatically" in page and "1 events wait for it" in page
    # Fixed and enabled again: what waited is delivered.
    receiver.statuses = [200]
    run_on_commit(endpoint_update, actor=alice, endpoint=endpoint, is_active=True)
    assert OutboxEvent.objects.get().status == "delivered"


def test_no_event_is_lost_while_the_receiver_is_down_and_order_is_kept_per_message(
    endpoint, receiver, bob, make_sender, run_on_commit, settings
):
    settings.WEBHOOK_RETRY_SCHEDULE = [0.01] * 20  # down longer than three tries, not long enough to disable
    receiver.down()
    messages = [send_one(bob, make_sender, run_on_commit, to=f"+1415555{2600 + i}") for i in range(3)]
    for message in messages:
        deliver(message, run_on_commit)
    sweep_after_retry_delay()  # still down: a second failure
    assert receiver.received == []
    receiver.up()
    sweep_after_retry_delay()
    events = receiver.accepted()
    assert len(events) == 6 and OutboxEvent.objects.filter(status="pending").count() == 0
    for message in messages:
        mine = [e["type"] for e in events if e["data"]["id"] == message.pk]
        assert mine == ["message.sent", "message.delivered"]


def test_the_send_path_never_waits_for_a_webhook(
    endpoint, receiver, bob, make_sender, django_capture_on_commit_callbacks
):
    """The status change writes the outbox rows in its own transaction; HTTP starts only after the
    commit, in a Celery task (here: the callbacks are captured, not run)."""
    make_sender(bob, number="+14155550100")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        message = message_send_single(user=bob, to="+14155552671", body="hi")
        move(ids=[message.pk], to="queued", allowed_from=earlier_than("queued"))
    assert OutboxEvent.objects.filter(event_type="message.sent").count() == 1
    assert receiver.received == [] and callbacks


def test_endpoints_receive_only_their_event_types(alice, receiver, bob, make_sender, run_on_commit):
    endpoint_create(actor=alice, url=receiver.url, event_types=["message.delivered"])
    message = send_one(bob, make_sender, run_on_commit)
    deliver(message, run_on_commit)
    assert [e["type"] for e in receiver.accepted()] == ["message.delivered"]


def test_resend_delivers_the_same_event_again(endpoint, receiver, alice, bob, make_sender, run_on_commit):
    send_one(bob, make_sender, run_on_commit)
    event = OutboxEvent.objects.get()
    run_on_commit(event_resend, actor=alice, event=event)
    ids = [r["headers"]["webhook-id"] for r in receiver.received]
    assert ids == [event.webhook_id, event.webhook_id]
    assert DeliveryAttempt.objects.filter(event=event).count() == 2
    assert AuditEvent.objects.filter(action="webhook.resend").exists()


def test_consent_campaign_inbound_and_import_events(
    endpoint, receiver, alice, bob, make_recipients, make_campaign, run_on_commit, tmp_path
):
    from campaigns.services import campaign_auto_pause
    from recipients.models import ConsentEvent, RecipientList
    from recipients.services import import_csv, recipient_opt_out

    (person,) = make_recipients(1)
    run_on_commit(recipient_opt_out, recipient=person, channel=ConsentEvent.Channel.API, evidence="test", actor=bob)
    campaign = make_campaign(bob, status="sending")
    run_on_commit(campaign_auto_pause, campaign_id=campaign.pk, reason="too many failures")
    csv = tmp_path / "people.csv"
    csv.write_text("phone,first_name\n+14155552699,Ann\nnot-a-number,Bob\n")
    run_on_commit(import_csv, path=csv, recipient_list=RecipientList.objects.create(name="imported"), user=alice)
    types = [(e["type"], e["data"]) for e in receiver.accepted()]
    assert types[0][0] == "recipient.opted_out" and types[0][1]["id"] == person.pk
    assert types[1] == ("campaign.paused", {"id": campaign.pk, "status": "paused", "reason": "too many failures"})
    assert types[2][0] == "import.finished" and types[2][1]["status"] == "completed"
    assert types[2][1]["rejected"] == 1


def test_event_publish_refuses_unknown_types_and_skips_when_nobody_listens(db):
    with pytest.raises(ValueError):
        event_publish(event_type="message.teleported", data={})
    assert event_publish(event_type="message.sent", data={}) == 0
    assert not WebhookEndpoint.objects.exists()


def test_delivered_events_are_purged_after_the_retention_period_and_pending_ones_never(
    endpoint, receiver, bob, make_sender, run_on_commit, settings
):
    from datetime import timedelta

    from django.utils import timezone

    from events.delivery import purge_delivered

    send_one(bob, make_sender, run_on_commit)
    receiver.down()
    send_one(bob, make_sender, run_on_commit, to="+14155552672")  # stays pending
    delivered, pending = OutboxEvent.objects.order_by("id")
    assert (delivered.status, pending.status) == ("delivered", "pending")
    later = timezone.now() + timedelta(days=settings.WEBHOOK_RETENTION_DAYS, minutes=1)
    assert purge_delivered(now=timezone.now()) == 0
    OutboxEvent.objects.filter(pk=pending.pk).update(created_at=timezone.now() - timedelta(days=365))
    assert purge_delivered(now=later) == 1
    assert list(OutboxEvent.objects.values_list("pk", flat=True)) == [pending.pk]
    assert not DeliveryAttempt.objects.filter(event_id=delivered.pk).exists()
