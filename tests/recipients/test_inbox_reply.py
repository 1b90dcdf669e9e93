"""Replying from the inbox: one-off, from the number the person wrote to, refused when they opted out."""

from __future__ import annotations

import pytest
from django.urls import reverse

from messaging.models import Message
from recipients.models import InboundMessage, Recipient

pytestmark = pytest.mark.django_db


@pytest.fixture
def line(bob, make_sender):
    return make_sender(bob, number="+14155550177", label="Shop line")


def _inbound(to: str, sender: str = "+14152000001", **extra) -> InboundMessage:
    return InboundMessage.objects.create(provider="plivo", sender=sender, to=to, text="Are you open today?", **extra)


def test_a_reply_goes_out_from_the_number_they_wrote_to(client, bob, line, make_sender):
    make_sender(bob, number="+14155550188")  # a second grant: the reply still uses the number they wrote to
    inbound = _inbound(line.number)
    client.force_login(bob)
    assert ">Reply<" in client.get(reverse("recipients:inbox")).content.decode()
    page = client.get(reverse("recipients:inbox_reply", args=[inbound.pk])).content.decode()
    assert "Are you open today?" in page and "Send reply from +14155550177" in page
    response = client.post(reverse("recipients:inbox_reply", args=[inbound.pk]), {"body": "Yes, until 6pm."})
    assert response.status_code == 302 and response["Location"] == reverse("recipients:inbox")
    message = Message.objects.get()
    assert (message.to, message.sender, message.kind, message.campaign_id) == (
        "+14152000001",
        "+14155550177",
        Message.Kind.SINGLE,
        None,
    )
    assert message.body == "Yes, until 6pm." and message.created_by == bob
    assert "queued, from +14155550177" in client.get(reverse("recipients:inbox")).content.decode()


def test_a_reply_to_someone_who_opted_out_is_refused_with_a_clear_message(client, bob, line, make_recipients):
    person = make_recipients(1, consent="opted_out")[0]
    inbound = _inbound(line.number, sender=person.phone, kind="opt_out")
    client.force_login(bob)
    response = client.post(reverse("recipients:inbox_reply", args=[inbound.pk]), {"body": "Sorry to see you go"})
    assert response.status_code == 400
    assert "Reply not sent: This number has opted out; it cannot be sent messages." in response.content.decode()
    assert not Message.objects.exists()


def test_a_reply_needs_a_grant_for_the_number_they_wrote_to(client, alice, bob, line, make_sender):
    make_sender(alice, number="+14155550199")
    inbound = _inbound(line.number)
    client.force_login(alice)
    response = client.post(reverse("recipients:inbox_reply", args=[inbound.pk]), {"body": "Hi"})
    assert response.status_code == 400
    assert "You are not authorized to send from +14155550177." in response.content.decode()
    assert not Message.objects.exists()


def test_viewers_see_no_reply_and_may_not_reply(client, carol, line):
    inbound = _inbound(line.number)
    client.force_login(carol)
    assert ">Reply<" not in client.get(reverse("recipients:inbox")).content.decode()
    assert client.post(reverse("recipients:inbox_reply", args=[inbound.pk]), {"body": "Hi"}).status_code == 403
    assert not Message.objects.exists()


@pytest.mark.parametrize("body", ["", "   ", "x" * 1601])
def test_an_empty_or_huge_reply_is_a_form_error(client, bob, line, body):
    inbound = _inbound(line.number)
    client.force_login(bob)
    response = client.post(reverse("recipients:inbox_reply", args=[inbound.pk]), {"body": body})
    assert response.status_code == 400 and 'aria-invalid="true"' in response.content.decode()
    assert not Message.objects.exists()
    assert Recipient.objects.filter(phone="+14152000001").count() == 0
