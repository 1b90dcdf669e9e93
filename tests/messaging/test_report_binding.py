"""Issue 16 finding 2: a delivery report changes a message only when our reference, the provider
and the provider's message id all agree; an early report waits until the id is known."""

from __future__ import annotations

import json

import pytest

from messaging.models import Message, MessageStatus
from providers.events import record_status_events
from providers.models import ProviderEvent
from providers.status import DeliveryStatus, StatusEvent
from providers.tasks import drain_status_events
from tests.providers.conftest import PLIVO_SECRET, PLIVO_TOKEN, signed_plivo_post

pytestmark = pytest.mark.django_db
S = MessageStatus
FLOWROUTE_SECRET = "s3cret-flowroute-path"


@pytest.fixture(autouse=True)
def webhook_settings(settings):
    settings.PLIVO_AUTH_TOKEN = PLIVO_TOKEN
    settings.PLIVO_WEBHOOK_SECRET = PLIVO_SECRET
    settings.FLOWROUTE_WEBHOOK_SECRET = FLOWROUTE_SECRET
    settings.PUBLIC_BASE_URL = "https://sms.example.com"


def message(status=S.QUEUED, provider="plivo", provider_message_id="uuid-1", **fields) -> Message:
    return Message.objects.create(
        kind=Message.Kind.SINGLE,
        to="+14155552671",
        sender="+14155550100",
        provider=provider,
        status=status,
        provider_message_id=provider_message_id,
        **fields,
    )


def flowroute_report(client, ref, status="delivered", mdr_id="mdr2-1"):
    body = {"data": {"id": mdr_id, "attributes": {"status": status, "status_code": "1000", "level": 2}}}
    path = f"/webhooks/flowroute/{FLOWROUTE_SECRET}/status/{ref}/"
    return client.post(path, data=json.dumps(body), content_type="application/json")


def plivo_report(client, ref, status="delivered", uuid="uuid-1"):
    params = {"MessageUUID": uuid, "Status": status, "To": "14155552671", "From": "14155550100"}
    return signed_plivo_post(client, f"/webhooks/plivo/{PLIVO_SECRET}/status/{ref}/", params)


def settled(m: Message) -> Message:
    drain_status_events()
    m.refresh_from_db()
    return m


@pytest.mark.parametrize("ref", ["not-a-number", "0", "-1", "\uff11\uff12", "12.0"])
def test_a_report_that_names_no_message_of_ours_is_refused_and_touches_nothing(client, ref):
    pending = message(status=S.PENDING, provider="flowroute", provider_message_id="")

    response = flowroute_report(client, ref)

    assert response.status_code == 400
    assert ProviderEvent.objects.count() == 0
    assert settled(pending).status == S.PENDING


def test_a_flowroute_report_never_changes_a_plivo_message(client):
    plivo_message = message(provider="plivo", provider_message_id="uuid-1")

    # the secret holder even knows Plivo's id for it
    assert flowroute_report(client, plivo_message.pk, "failed", mdr_id="uuid-1").status_code == 200

    assert settled(plivo_message).status == S.QUEUED
    assert ProviderEvent.objects.get().processed_at is not None  # looked at once, then ignored


def test_a_report_with_another_provider_id_changes_nothing(client):
    m = message(provider_message_id="uuid-1")

    plivo_report(client, m.pk, "delivered", uuid="uuid-someone-else")

    assert settled(m).status == S.QUEUED


def test_a_report_for_a_never_sent_message_waits_and_is_dropped_when_the_real_id_differs(client):
    pending = message(status=S.PENDING, provider_message_id="")
    plivo_report(client, pending.pk, "delivered", uuid="forged")

    assert settled(pending).status == S.PENDING
    assert ProviderEvent.objects.get().processed_at is None  # kept: the id may still come
    Message.objects.filter(pk=pending.pk).update(status=S.QUEUED, provider_message_id="uuid-real")  # now sent

    assert settled(pending).status == S.QUEUED
    assert ProviderEvent.objects.get().processed_at is not None


def test_an_early_report_is_applied_once_the_provider_id_is_known(client):
    in_flight = message(status=S.SENDING, provider_message_id="")
    plivo_report(client, in_flight.pk, "delivered", uuid="uuid-9")
    assert settled(in_flight).status == S.SENDING

    Message.objects.filter(pk=in_flight.pk).update(status=S.QUEUED, provider_message_id="uuid-9")

    assert settled(in_flight).status == S.DELIVERED


def test_a_report_that_waited_longer_than_any_send_can_take_is_dropped(client, settings):
    in_flight = message(status=S.SENDING, provider_message_id="")
    plivo_report(client, in_flight.pk, "delivered")
    ProviderEvent.objects.update(received_at="2000-01-01T00:00:00Z")

    assert settled(in_flight).status == S.SENDING
    assert ProviderEvent.objects.get().processed_at is not None


def test_a_lost_outcome_adopts_the_first_id_and_ignores_other_ids():
    lost = message(status=S.UNKNOWN, provider_message_id="")
    events = [
        StatusEvent(provider="plivo", message_ref=str(lost.pk), status=DeliveryStatus.SENT, provider_message_id="a"),
        StatusEvent(provider="plivo", message_ref=str(lost.pk), status=DeliveryStatus.FAILED, provider_message_id="b"),
    ]
    record_status_events(events=events)

    lost = settled(lost)
    assert (lost.status, lost.provider_message_id) == (S.SENT, "a")


def test_a_refusal_reported_for_another_providers_message_does_not_opt_anyone_out(client, make_recipients):
    (person,) = make_recipients(1)
    m = message(provider="flowroute", provider_message_id="mdr2-1", recipient=person)
    params = {"MessageUUID": "mdr2-1", "Status": "failed", "ErrorCode": "200", "To": "1", "From": "2"}

    assert signed_plivo_post(client, f"/webhooks/plivo/{PLIVO_SECRET}/status/{m.pk}/", params).status_code == 200

    assert settled(m).status == S.QUEUED
    person.refresh_from_db()
    assert person.consent_status == "opted_in"
