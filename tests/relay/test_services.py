"""Conversation creation, routing, STOP, closing and expiry, on the real database."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from messaging.models import Message
from providers.backends import locmem
from providers.events import record_inbound
from providers.status import InboundSMS
from relay import services
from relay.models import Conversation, ConversationLeg, RelayMessage
from tests.relay.conftest import A, B, C, assert_no_leak, message_payloads, outbox_payloads

pytestmark = pytest.mark.django_db


def inbound(sender: str, to: str, text: str = "hi", media=()) -> None:
    record_inbound(inbound=InboundSMS(provider="plivo", sender=sender, to=to, text=text, media_urls=tuple(media)))


@pytest.fixture
def conversation(make_relay_numbers, django_capture_on_commit_callbacks, bob):
    make_relay_numbers(2)
    with django_capture_on_commit_callbacks(execute=True):
        conv = services.conversation_create(
            participant_a=A, participant_b=B, name_a="Driver", name_b="Rider", created_by=bob
        )
    locmem.reset()
    return conv


def test_it_introduces_each_side_from_the_number_that_stands_for_the_other(
    make_relay_numbers, django_capture_on_commit_callbacks, bob
):
    make_relay_numbers(2)
    with django_capture_on_commit_callbacks(execute=True):
        conv = services.conversation_create(
            participant_a="(415) 200-0001",
            participant_b="+1 415 200 0002",
            name_a="Driver",
            name_b="Rider",
            created_by=bob,
        )
    assert (conv.participant_a, conv.participant_b) == (A, B)
    sent = {m.to: m for m in locmem.outbox}
    assert sent[A].sender == conv.virtual_for_a.number and "Rider" in sent[A].body
    assert sent[B].sender == conv.virtual_for_b.number and "Driver" in sent[B].body
    assert set(Message.objects.values_list("kind", "status")) == {("relay", "queued")}
    assert_no_leak(outbox_payloads())


@pytest.mark.parametrize(
    ("a", "b", "field", "words"),
    [
        ("not a number", B, "participant_a", "not a phone number"),
        ("+1415200000", B, "participant_a", "not a valid"),
        (A, "+442071838750", "participant_b", "not a mobile"),  # a London landline
        (A, "(415) 200-0001", "participant_b", "different numbers"),
        (A, "+14155550100", "participant_b", "relay numbers"),
    ],
)
def test_it_refuses_bad_participants_with_a_clear_reason(make_relay_numbers, a, b, field, words):
    make_relay_numbers(2)
    with pytest.raises(services.RelayError) as err:
        services.conversation_create(participant_a=a, participant_b=b)
    assert err.value.field == field and words in err.value.message
    assert not Conversation.objects.exists()


def test_a_foreign_mobile_number_is_accepted_and_never_gets_a_flowroute_number(make_relay_numbers):
    (flowroute,) = make_relay_numbers(1, provider="flowroute")
    with pytest.raises(services.PoolExhausted):
        services.conversation_create(participant_a=A, participant_b="+447911123456")
    (plivo,) = make_relay_numbers(1, start=200)
    conv = services.conversation_create(participant_a=A, participant_b="+447911123456")
    assert conv.participant_b == "+447911123456"
    assert (conv.virtual_for_a, conv.virtual_for_b) == (flowroute, plivo)


def test_it_refuses_a_person_who_opted_out(make_relay_numbers, make_recipients):
    make_relay_numbers(1)
    (person,) = make_recipients(1, consent="opted_out")
    with pytest.raises(services.RelayError, match="opted out"):
        services.conversation_create(participant_a=A, participant_b=person.phone)


def test_a_name_with_a_phone_number_is_refused(make_relay_numbers):
    make_relay_numbers(1)
    with pytest.raises(services.RelayError) as err:
        services.conversation_create(participant_a=A, participant_b=B, name_a="call me 415 200 0001")
    assert err.value.field == "name_a"


def test_one_person_never_gets_the_same_virtual_number_twice_and_the_pool_runs_out_clearly(make_relay_numbers):
    make_relay_numbers(2)
    first = services.conversation_create(participant_a=A, participant_b=B)
    second = services.conversation_create(participant_a=A, participant_b=C)
    assert first.virtual_for_a != second.virtual_for_a
    with pytest.raises(services.PoolExhausted, match="No relay number is free"):
        services.conversation_create(participant_a=C, participant_b=A)
    # Someone else can still use the whole pool.
    assert services.conversation_create(participant_a="+14152000004", participant_b=B) is not None
    assert Conversation.objects.count() == 3


def test_inactive_numbers_are_not_used_for_new_conversations(make_relay_numbers):
    first, second = make_relay_numbers(2)
    first.is_active = False
    first.save()
    conv = services.conversation_create(participant_a=A, participant_b=B)
    assert conv.virtual_for_a == second and conv.virtual_for_b == second


def test_the_database_refuses_two_open_legs_with_the_same_pair(conversation):
    leg = conversation.legs.get(real_number=A)
    with pytest.raises(IntegrityError), transaction.atomic():
        ConversationLeg.objects.create(
            conversation=Conversation.objects.create(
                participant_a=A, participant_b=C, virtual_for_a=leg.virtual_number, virtual_for_b=leg.virtual_number
            ),
            real_number=A,
            virtual_number=leg.virtual_number,
        )


def test_messages_are_relayed_both_ways_with_media_and_no_real_number(conversation, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        inbound(A, conversation.virtual_for_a.number, "I am outside", media=["https://media.example/a.jpg"])
    with django_capture_on_commit_callbacks(execute=True):
        inbound(B, conversation.virtual_for_b.number, "coming down")
    to_b, to_a = locmem.outbox
    assert (to_b.to, to_b.sender, to_b.body, to_b.media_urls) == (
        B,
        conversation.virtual_for_b.number,
        "I am outside",
        ("https://media.example/a.jpg",),
    )
    assert (to_a.to, to_a.sender, to_a.body) == (A, conversation.virtual_for_a.number, "coming down")
    transcript = list(conversation.transcript.values_list("direction", "outcome", "from_number", "text"))
    assert transcript == [("a_to_b", "relayed", A, "I am outside"), ("b_to_a", "relayed", B, "coming down")]
    assert all(m.message_id for m in conversation.transcript.all())
    assert_no_leak(message_payloads())
    assert_no_leak(outbox_payloads())


def test_each_inbound_maps_to_its_own_conversation_when_a_person_has_two(
    make_relay_numbers, django_capture_on_commit_callbacks
):
    make_relay_numbers(2)
    with_b = services.conversation_create(participant_a=A, participant_b=B)
    with_c = services.conversation_create(participant_a=A, participant_b=C)
    with django_capture_on_commit_callbacks(execute=True):
        inbound(A, with_c.virtual_for_a.number, "for C")
        inbound(A, with_b.virtual_for_a.number, "for B")
    relayed = {m.body: m.to for m in locmem.outbox if m.body.startswith("for")}
    assert relayed == {"for C": C, "for B": B}


def test_an_unmatched_message_gets_the_configured_reply_once_and_is_stored_not_relayed(
    conversation, settings, django_capture_on_commit_callbacks
):
    settings.RELAY_NO_CONVERSATION_REPLY = "Nobody here."
    with django_capture_on_commit_callbacks(execute=True):
        inbound(C, conversation.virtual_for_a.number, "hello?")
        inbound(C, conversation.virtual_for_a.number, "hello??")
    assert [(m.to, m.sender, m.body) for m in locmem.outbox] == [(C, conversation.virtual_for_a.number, "Nobody here.")]
    stored = RelayMessage.objects.filter(outcome="unmatched")
    assert [m.text for m in stored] == ["hello?", "hello??"] and all(m.conversation is None for m in stored)
    assert not conversation.transcript.exists()


def test_stop_by_the_store_is_relayed_not_a_stop(conversation, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        inbound(B, conversation.virtual_for_b.number, "stop by the store tomorrow?")
    conversation.refresh_from_db()
    assert conversation.status == "open"
    assert [(m.to, m.body) for m in locmem.outbox] == [(A, "stop by the store tomorrow?")]


def test_a_message_to_a_number_that_is_not_a_relay_number_is_left_to_the_inbox(conversation):
    assert services.relay_route_inbound(InboundSMS(provider="plivo", sender=A, to="+14155559999", text="x")) is False
    assert not RelayMessage.objects.exists()


@pytest.mark.parametrize(
    "word",
    [
        "STOP",
        "stop",
        " Opt out ",
        "unsubscribe",
        "STOP.",
        "Stop!",
        "opt-out",
        "stopall",
        "quit",
        "revoke",
        "Please stop texting me",
        "remove me",
    ],
)
def test_stop_ends_the_conversation_is_not_relayed_and_frees_the_numbers(
    conversation, django_capture_on_commit_callbacks, word, settings
):
    with django_capture_on_commit_callbacks(execute=True):
        inbound(B, conversation.virtual_for_b.number, word)
    conversation.refresh_from_db()
    assert conversation.status == "closed" and conversation.close_reason == "participant sent STOP"
    assert not conversation.legs.filter(is_open=True).exists()
    sent = {m.to: m.body for m in locmem.outbox}
    assert sent == {
        B: settings.RELAY_STOP_REPLY,
        A: settings.RELAY_CLOSED_MESSAGE,
    }
    assert all(word.strip().lower() not in body.lower() for body in sent.values())
    assert conversation.transcript.get().outcome == "stopped"
    # Later messages are no longer relayed.
    locmem.reset()
    with django_capture_on_commit_callbacks(execute=True):
        inbound(A, conversation.virtual_for_a.number, "are you there")
    assert [m.to for m in locmem.outbox] == [A]  # only the no-conversation reply


def test_closing_frees_the_numbers_and_is_done_once(make_relay_numbers, django_capture_on_commit_callbacks):
    make_relay_numbers(1)
    conv = services.conversation_create(participant_a=A, participant_b=B)
    with pytest.raises(services.PoolExhausted):
        services.conversation_create(participant_a=A, participant_b=C)
    with django_capture_on_commit_callbacks(execute=True):
        assert services.conversation_close(conversation=conv) is True
    assert services.conversation_close(conversation=conv) is False
    assert sorted(m.to for m in locmem.outbox) == [A, B]
    again = services.conversation_create(participant_a=A, participant_b=C)
    assert again.virtual_for_a == conv.virtual_for_a


def test_conversations_expire_and_their_numbers_are_freed(make_relay_numbers, django_capture_on_commit_callbacks):
    from relay.tasks import expire_conversations

    make_relay_numbers(1)
    soon = services.conversation_create(participant_a=A, participant_b=B, ttl=timedelta(hours=1))
    later = services.conversation_create(participant_a=C, participant_b="+14152000004", ttl=timedelta(hours=5))
    assert services.conversations_expire(now=timezone.now()) == 0
    assert services.conversations_expire(now=timezone.now() + timedelta(hours=2)) == 1
    soon.refresh_from_db()
    later.refresh_from_db()
    assert (soon.status, later.status) == ("expired", "open")
    assert not soon.legs.filter(is_open=True).exists()
    Conversation.objects.filter(pk=later.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert expire_conversations.delay().get() == 1
    assert Conversation.objects.filter(status="open").count() == 0


def test_a_message_after_the_expiry_time_is_not_relayed_even_before_beat_runs(
    make_relay_numbers, django_capture_on_commit_callbacks
):
    make_relay_numbers(1)
    conv = services.conversation_create(participant_a=A, participant_b=B, ttl=timedelta(hours=1))
    Conversation.objects.filter(pk=conv.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    with django_capture_on_commit_callbacks(execute=True):
        inbound(A, conv.virtual_for_a.number, "late")
    conv.refresh_from_db()
    assert conv.status == "expired"
    assert "late" not in [m.body for m in locmem.outbox]
    assert RelayMessage.objects.get().outcome == "unmatched"


def test_the_leak_check_catches_a_leak():
    with pytest.raises(AssertionError, match="leaked"):
        assert_no_leak([(B, "+14155550100", "call me on (415) 200-0001", [])])
    with pytest.raises(AssertionError, match="leaked"):
        assert_no_leak([(B, A, "hi", [])])
    assert_no_leak([(A, "+14155550100", "your number is +14152000001", [])])  # their own number is fine
