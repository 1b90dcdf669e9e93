"""Delivery reports from the webhooks applied to real Message rows: forward only, never lost."""

from __future__ import annotations

import pytest

from messaging.models import Message, MessageStatus
from providers.models import ProviderEvent
from providers.tasks import drain_status_events
from tests.providers.conftest import PLIVO_SECRET, PLIVO_TOKEN, signed_plivo_post

pytestmark = pytest.mark.django_db
S = MessageStatus
SECRET = "s3cret-flowroute-path"


@pytest.fixture(autouse=True)
def webhook_settings(settings):
    settings.PLIVO_AUTH_TOKEN = PLIVO_TOKEN
    settings.PLIVO_WEBHOOK_SECRET = PLIVO_SECRET
    settings.FLOWROUTE_WEBHOOK_SECRET = SECRET
    settings.PUBLIC_BASE_URL = "https://sms.example.com"


def make_message(status=S.QUEUED, provider="plivo", to="+14155552671", **fields):
    """A message as the send path leaves it: sent ones carry the provider's id (the reports' ``uuid-1``)."""
    fields.setdefault("provider_message_id", "" if status in (S.PENDING, S.CLAIMED, S.SENDING) else "uuid-1")
    return Message.objects.create(
        kind=Message.Kind.SINGLE, to=to, sender="+14155550100", provider=provider, status=status, **fields
    )


def plivo_report(client, message, status, **extra):
    params = {"MessageUUID": "uuid-1", "Status": status, "To": "14155552671", "From": "14155550100", **extra}
    response = signed_plivo_post(client, f"/webhooks/plivo/{PLIVO_SECRET}/status/{message.pk}/", params)
    assert response.status_code == 200


def flowroute_report(client, message, status, code="1000"):
    body = {"data": {"id": "mdr2-1", "attributes": {"status": status, "status_code": code, "level": 2}}}
    path = f"/webhooks/flowroute/{SECRET}/status/{message.pk}/"
    assert client.post(path, data=body, content_type="application/json").status_code == 200


def settle(message):
    drain_status_events()
    message.refresh_from_db()
    return message


def test_reports_move_a_message_forward(client):
    message = make_message()
    plivo_report(client, message, "sent")
    assert settle(message).status == S.SENT
    plivo_report(client, message, "delivered")
    assert settle(message).status == S.DELIVERED
    assert message.finished_at is not None


def test_a_late_sent_never_overwrites_delivered(client):
    message = make_message()
    plivo_report(client, message, "delivered")
    plivo_report(client, message, "sent")  # out of order, in one drain

    assert settle(message).status == S.DELIVERED
    plivo_report(client, message, "queued")  # and in a later drain
    assert settle(message).status == S.DELIVERED


def test_duplicate_reports_are_harmless(client):
    message = make_message()
    for _ in range(3):
        plivo_report(client, message, "undelivered", ErrorCode="80")

    assert settle(message).status == S.UNDELIVERED
    assert (message.error_code, message.error_permanent) == ("80", True)
    assert drain_status_events() == 0


def test_an_early_report_is_kept_until_the_send_path_stores_the_provider_id(client):
    message = make_message(status=S.SENDING)  # the provider sent the callback before its 202
    plivo_report(client, message, "sent")

    assert settle(message).status == S.SENDING  # the id is not known yet: nothing can be checked
    assert ProviderEvent.objects.get().processed_at is None
    Message.objects.filter(pk=message.pk).update(status=S.QUEUED, provider_message_id="uuid-1")  # the 202 arrives

    assert settle(message).status == S.SENT
    assert ProviderEvent.objects.get().processed_at is not None


def test_a_lost_send_outcome_is_settled_by_the_report(client):
    """The worker died after Plivo accepted the message: the callback URL names our message."""
    message = make_message(status=S.UNKNOWN, provider_message_id="")
    plivo_report(client, message, "delivered")

    assert settle(message).status == S.DELIVERED
    assert message.provider_message_id == "uuid-1"


def test_parts_of_a_long_message_never_regress_it(client):
    message = make_message(provider_message_id="parent")
    plivo_report(client, message, "delivered", ParentMessageUUID="parent", PartInfo="1 of 2", MessageUUID="p1")
    plivo_report(client, message, "sent", ParentMessageUUID="parent", PartInfo="2 of 2", MessageUUID="p2")

    assert settle(message).status == S.DELIVERED


def test_flowroute_receipts_are_applied(client):
    message = make_message(provider="flowroute", provider_message_id="mdr2-1")
    flowroute_report(client, message, "smsc submit", "1001")
    flowroute_report(client, message, "message buffered", "1003")
    assert settle(message).status == S.SENT
    flowroute_report(client, message, "delivered")
    assert settle(message).status == S.DELIVERED


def test_plivo_error_200_fails_the_message_and_opts_the_recipient_out(client, make_recipients):
    (recipient,) = make_recipients(1)
    message = make_message(recipient=recipient, to=recipient.phone)
    plivo_report(client, message, "failed", ErrorCode="200")

    assert settle(message).status == S.FAILED
    assert message.error_code == "200"
    recipient.refresh_from_db()
    assert recipient.consent_status == "opted_out"


def test_other_failures_leave_consent_alone(client, make_recipients):
    (recipient,) = make_recipients(1)
    message = make_message(recipient=recipient, to=recipient.phone)
    plivo_report(client, message, "failed", ErrorCode="30")

    assert settle(message).status == S.FAILED
    recipient.refresh_from_db()
    assert recipient.consent_status == "opted_in"
