"""Keywords through the real inbound webhooks: STOP / START / YES / HELP, the inbox, double opt-in."""

from __future__ import annotations

import json

import pytest

from messaging.models import Message
from providers.backends import locmem
from providers.events import record_inbound
from providers.status import InboundSMS
from recipients.inbound import register_inbound_router, unregister_inbound_router
from recipients.models import ConsentEvent, InboundMessage, Recipient
from recipients.services import inbound_keyword_kind, recipient_request_confirmation
from tests.providers.conftest import PLIVO_SECRET, PLIVO_TOKEN, signed_plivo_post

pytestmark = pytest.mark.django_db
SECRET = "s3cret-flowroute-path"
OUR_NUMBER = "+14155550100"
THEM = "+14155552671"


@pytest.fixture(autouse=True)
def webhook_settings(settings):
    settings.PLIVO_AUTH_TOKEN = PLIVO_TOKEN
    settings.PLIVO_WEBHOOK_SECRET = PLIVO_SECRET
    settings.FLOWROUTE_WEBHOOK_SECRET = SECRET
    settings.PUBLIC_BASE_URL = "https://sms.example.com"


@pytest.fixture(autouse=True)
def _run_on_commit(django_capture_on_commit_callbacks):
    """Webhook requests run inside the test's transaction; run their on_commit hooks (the reply send)."""
    _hooks["capture"] = django_capture_on_commit_callbacks
    yield
    _hooks.clear()


_hooks: dict = {}


def _post(client, *args, **kwargs):
    with _hooks["capture"](execute=True):
        return client.post(*args, **kwargs)


def plivo_inbound(client, text: str, *, sender: str = THEM, uuid: str = "in-1"):
    params = {
        "From": sender.lstrip("+"),
        "To": OUR_NUMBER.lstrip("+"),
        "Type": "sms",
        "Text": text,
        "MessageUUID": uuid,
    }
    with _hooks["capture"](execute=True):
        response = signed_plivo_post(client, f"/webhooks/plivo/{PLIVO_SECRET}/inbound/", params)
    assert response.status_code == 200, response.content
    return response


def flowroute_inbound(client, text: str, *, sender: str = THEM):
    body = {
        "data": {
            "type": "message",
            "id": "mdr2-in",
            "attributes": {"body": text, "from": sender.lstrip("+"), "to": OUR_NUMBER.lstrip("+"), "is_mms": False},
        }
    }
    response = _post(
        client, f"/webhooks/flowroute/{SECRET}/inbound/", data=json.dumps(body), content_type="application/json"
    )
    assert response.status_code == 200, response.content
    return response


def replies() -> list[tuple[str, str, str]]:
    return [(m.to, m.sender, m.body) for m in locmem.outbox]


@pytest.mark.parametrize(
    "text",
    [
        "STOP",
        "stop",
        " Stop. ",
        "STOPALL",
        "unsubscribe",
        "UNSUB",
        "cancel",
        "END",
        "quit!",
        "REVOKE",
        "optout",
        "opt out",
        "Opt-Out",
        "\nSTOP\n",
        "stop!!",
        "unsubscribe me",
        "STOP ALL",
    ],
)
def test_every_opt_out_keyword_opts_out_through_the_plivo_webhook(client, settings, text, make_recipients):
    (person,) = make_recipients(1)
    plivo_inbound(client, text, sender=person.phone)

    person.refresh_from_db()
    assert person.consent_status == "opted_out"
    event = ConsentEvent.objects.get(recipient=person)
    inbound = InboundMessage.objects.get()
    assert (event.from_status, event.to_status, event.channel) == ("opted_in", "opted_out", "sms")
    assert f"inbound message {inbound.pk}" in event.evidence
    assert inbound.kind == "opt_out" and inbound.recipient == person
    assert replies() == [(person.phone, OUR_NUMBER, settings.SMS_STOP_REPLY)]
    assert Message.objects.get(kind="reply").status == "queued"


def test_stop_from_an_unknown_number_creates_an_opted_out_recipient(client, settings):
    flowroute_inbound(client, "STOP")
    person = Recipient.objects.get(phone=THEM)
    assert person.consent_status == "opted_out"
    assert person.consent_events.get().channel == "sms"
    assert replies() == [(THEM, OUR_NUMBER, settings.SMS_STOP_REPLY)]


@pytest.mark.parametrize("sender", ["PLIVO", "Bank-Alert", "12345"])
def test_a_keyword_from_a_sender_id_or_short_code_is_kept_but_changes_nothing_and_gets_no_reply(client, sender):
    """Alphanumeric sender IDs and short codes are not people: no recipient, no consent, no reply."""
    plivo_inbound(client, "STOP", sender=sender)
    plivo_inbound(client, "HELP", sender=sender, uuid="in-2")
    assert replies() == []
    assert not Recipient.objects.exists() and not ConsentEvent.objects.exists()
    stored = list(InboundMessage.objects.values_list("sender", "kind"))
    assert [kind for _, kind in stored] == ["message", "message"]
    assert all(s.lstrip("+") == sender for s, _ in stored)


def test_a_second_stop_soon_after_gets_no_second_confirmation(client, make_recipients):
    (person,) = make_recipients(1)
    plivo_inbound(client, "STOP", sender=person.phone, uuid="a")
    plivo_inbound(client, "stop", sender=person.phone, uuid="b")
    assert len(locmem.outbox) == 1
    assert InboundMessage.objects.filter(kind="opt_out").count() == 2
    assert ConsentEvent.objects.filter(recipient=person).count() == 1


@pytest.mark.parametrize("text", ["START", "unstop", "Yes", "yes!"])
def test_opt_in_keywords_opt_back_in(client, settings, text, make_recipients):
    (person,) = make_recipients(1, consent="opted_out")
    flowroute_inbound(client, text, sender=person.phone)
    person.refresh_from_db()
    assert person.consent_status == "opted_in"
    event = person.consent_events.get()
    assert (event.from_status, event.to_status, event.channel) == ("opted_out", "opted_in", "sms")
    assert replies() == [(person.phone, OUR_NUMBER, settings.SMS_START_REPLY)]


def test_a_first_opt_in_is_welcomed_and_only_a_return_is_subscribed_again(client, settings, make_recipients):
    """Issue 18: "You are subscribed again" went to people who had never been subscribed."""
    first, back = make_recipients(2, consent="pending")
    Recipient.objects.filter(pk=back.pk).update(consent_status="opted_out")
    plivo_inbound(client, "YES", sender=first.phone, uuid="first")
    plivo_inbound(client, "START", sender=back.phone, uuid="back")
    assert replies() == [
        (first.phone, OUR_NUMBER, settings.SMS_OPT_IN_REPLY),
        (back.phone, OUR_NUMBER, settings.SMS_START_REPLY),
    ]
    assert "again" not in settings.SMS_OPT_IN_REPLY and "again" in settings.SMS_START_REPLY


@pytest.mark.parametrize("text", ["HELP", "info", "Help?"])
def test_help_keywords_get_the_help_reply_and_change_nothing(client, settings, text, make_recipients):
    (person,) = make_recipients(1, consent="pending")
    plivo_inbound(client, text, sender=person.phone)
    person.refresh_from_db()
    assert person.consent_status == "pending" and not person.consent_events.exists()
    assert InboundMessage.objects.get().kind == "help"
    assert replies() == [(person.phone, OUR_NUMBER, settings.SMS_HELP_REPLY)]
    plivo_inbound(client, text, sender=person.phone, uuid="again")
    assert len(locmem.outbox) == 1  # at most one help reply a minute: no auto-responder ping-pong


@pytest.mark.parametrize(
    "text", ["Please stop texting me", "remove me", "take me off your list", "don't text me", "unsubscribe me"]
)
def test_a_clear_request_to_stop_opts_out_with_evidence_that_it_was_a_phrase(client, settings, text, make_recipients):
    """FCC 24-18: consent may be revoked by any reasonable means, not only by a keyword."""
    (person,) = make_recipients(1)
    plivo_inbound(client, text, sender=person.phone)

    person.refresh_from_db()
    assert person.consent_status == "opted_out"
    inbound = InboundMessage.objects.get()
    assert (inbound.kind, inbound.text) == ("opt_out", text)  # kept in the inbox for review
    event = ConsentEvent.objects.get(recipient=person)
    assert f"inbound message {inbound.pk}" in event.evidence
    phrase = event.evidence.startswith("opt-out request phrase, not a keyword")
    assert phrase is (text != "unsubscribe me")  # "unsubscribe me" is a keyword (docs/recipients.md)
    assert replies() == [(person.phone, OUR_NUMBER, settings.SMS_STOP_REPLY)]


@pytest.mark.parametrize("text", ["STOP IT", "stop by the store tomorrow?", "when is the sale?", "", "yes please"])
def test_everything_else_goes_to_the_inbox(client, text, make_recipients):
    (person,) = make_recipients(1)
    plivo_inbound(client, text, sender=person.phone)
    person.refresh_from_db()
    assert person.consent_status == "opted_in"
    message = InboundMessage.objects.get()
    assert (message.kind, message.text, message.recipient, message.provider) == ("message", text, person, "plivo")
    assert locmem.outbox == []


def test_the_reply_uses_the_provider_granted_for_the_number(client, bob, make_sender):
    make_sender(bob, number=OUR_NUMBER, provider="flowroute")
    plivo_inbound(client, "STOP")
    assert Message.objects.get(kind="reply").provider == "flowroute"


def test_double_opt_in_confirmation_then_yes(
    client, bob, make_sender, make_recipients, settings, django_capture_on_commit_callbacks
):
    (person,) = make_recipients(1, consent="pending")
    sender = make_sender(bob, number=OUR_NUMBER, provider="plivo")
    with django_capture_on_commit_callbacks(execute=True):
        message = recipient_request_confirmation(recipient=person, sender_number=sender.number, provider="plivo")
    message.refresh_from_db()
    assert (message.kind, message.to, message.sender, message.status) == (
        "confirmation",
        person.phone,
        OUR_NUMBER,
        "queued",
    )
    assert replies() == [(person.phone, OUR_NUMBER, settings.SMS_CONFIRMATION_TEXT)]
    person.refresh_from_db()
    assert person.confirmation_sent_at is not None

    plivo_inbound(client, "YES", sender=person.phone, uuid="yes-1")
    person.refresh_from_db()
    assert person.consent_status == "opted_in"
    inbound = InboundMessage.objects.get()
    event = person.consent_events.get()
    assert event.from_status == "pending" and event.to_status == "opted_in"
    assert event.evidence == f"inbound message {inbound.pk} to {OUR_NUMBER}: 'YES'"


def test_confirmation_is_refused_unless_pending(make_recipients):
    from django.core.exceptions import ValidationError

    (person,) = make_recipients(1, consent="opted_out")
    with pytest.raises(ValidationError):
        recipient_request_confirmation(recipient=person, sender_number=OUR_NUMBER, provider="plivo")
    assert not Message.objects.exists()


def test_a_router_can_take_a_message_before_keyword_handling(make_recipients):
    (person,) = make_recipients(1)
    taken = []

    def router(inbound):
        taken.append(inbound.text)
        return inbound.to == "+14155550199"

    register_inbound_router(router)
    try:
        record_inbound(inbound=InboundSMS(provider="plivo", sender=person.phone, to="+14155550199", text="STOP"))
        person.refresh_from_db()
        assert person.consent_status == "opted_in" and not InboundMessage.objects.exists()
        record_inbound(inbound=InboundSMS(provider="plivo", sender=person.phone, to=OUR_NUMBER, text="STOP"))
        person.refresh_from_db()
        assert person.consent_status == "opted_out"
    finally:
        unregister_inbound_router(router)
    assert taken == ["STOP", "STOP"]


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("OPT   OUT", "opt_out"),
        ("¡stop!", "opt_out"),
        ("stop stop", "message"),
        ("STOPP", "message"),
        (None, "message"),
    ],
)
def test_keyword_matching(text, kind):
    assert inbound_keyword_kind(text) == kind
