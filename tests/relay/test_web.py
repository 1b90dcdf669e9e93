"""The relay web pages: roles, masking, the create form and closing."""

from __future__ import annotations

import pytest
from django.urls import reverse

from relay import services
from relay.models import Conversation
from tests.relay.conftest import A, B

pytestmark = pytest.mark.django_db


@pytest.fixture
def conversation(make_relay_numbers):
    make_relay_numbers(2)
    conv = services.conversation_create(participant_a=A, participant_b=B)
    return conv


def test_pages_need_a_login(client, conversation):
    for url in (reverse("relay:list"), reverse("relay:detail", args=[conversation.pk])):
        response = client.get(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    response = client.post(reverse("relay:close", args=[conversation.pk]))
    assert response.status_code == 302
    conversation.refresh_from_db()
    assert conversation.status == "open"


def test_admin_sees_real_numbers(client, alice, conversation):
    client.force_login(alice)
    for url in (reverse("relay:list"), reverse("relay:detail", args=[conversation.pk])):
        body = client.get(url).content.decode()
        assert A in body and B in body


@pytest.mark.parametrize("who", ["bob", "carol"])
def test_non_admins_see_masked_numbers(client, conversation, who, request):
    client.force_login(request.getfixturevalue(who))
    for url in (reverse("relay:list"), reverse("relay:detail", args=[conversation.pk])):
        body = client.get(url).content.decode()
        assert A not in body and B not in body and "4152000001" not in body
        assert "0001" in body  # masked, last digits kept
        assert conversation.virtual_for_a.number in body


def test_viewer_gets_no_form_and_cannot_create_or_close(client, carol, conversation):
    client.force_login(carol)
    page = client.get(reverse("relay:list")).content.decode()
    assert "participant_a" not in page
    assert "Close conversation" not in client.get(reverse("relay:detail", args=[conversation.pk])).content.decode()
    response = client.post(reverse("relay:list"), {"participant_a": "+14152000005", "participant_b": "+14152000006"})
    assert response.status_code == 403
    assert client.post(reverse("relay:close", args=[conversation.pk])).status_code == 403
    assert Conversation.objects.count() == 1 and Conversation.objects.get().status == "open"


def test_sender_creates_a_conversation(client, bob, make_relay_numbers):
    make_relay_numbers(1)
    client.force_login(bob)
    response = client.post(
        reverse("relay:list"),
        {"participant_a": "415 200 0001", "participant_b": "415-200-0002", "name_a": "Ann", "expires_in_hours": "2"},
    )
    conv = Conversation.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("relay:detail", args=[conv.pk])
    assert (conv.participant_a, conv.participant_b, conv.created_by) == (A, B, bob)
    assert conv.expires_at is not None


def test_bad_input_and_an_empty_pool_are_form_errors(client, bob, make_relay_numbers):
    client.force_login(bob)
    assert client.post(reverse("relay:list"), {}).status_code == 400
    response = client.post(reverse("relay:list"), {"participant_a": "nope", "participant_b": B})
    assert response.status_code == 400 and "not a phone number" in response.content.decode()
    response = client.post(reverse("relay:list"), {"participant_a": A, "participant_b": B})
    assert response.status_code == 400 and "No relay number is free" in response.content.decode()
    assert not Conversation.objects.exists()


def test_sender_closes_a_conversation(client, bob, conversation):
    client.force_login(bob)
    response = client.post(reverse("relay:close", args=[conversation.pk]))
    assert response.status_code == 302
    conversation.refresh_from_db()
    assert conversation.status == "closed" and conversation.close_reason == "closed by bob"
    assert client.post(reverse("relay:close", args=[conversation.pk])).status_code == 302  # idempotent


def test_close_needs_post_and_unknown_ids_are_404(client, alice, conversation):
    client.force_login(alice)
    assert client.get(reverse("relay:close", args=[conversation.pk])).status_code == 405
    assert client.get(reverse("relay:detail", args=[999999])).status_code == 404
    assert client.post(reverse("relay:close", args=[999999])).status_code == 404


def test_transcript_shows_messages(client, carol, conversation):
    from providers.status import InboundSMS

    services.relay_route_inbound(
        InboundSMS(provider="plivo", sender=A, to=conversation.virtual_for_a.number, text="hello there")
    )
    client.force_login(carol)
    body = client.get(reverse("relay:detail", args=[conversation.pk])).content.decode()
    assert "hello there" in body and A not in body


def test_an_unapproved_admin_gets_nothing(client, make_user, conversation):
    mallory = make_user("mallory", role="admin", is_approved=False)
    client.force_login(mallory)
    # Their session no longer counts: back to the sign-in page.
    for response in (
        client.get(reverse("relay:list")),
        client.get(reverse("relay:detail", args=[conversation.pk])),
        client.post(reverse("relay:close", args=[conversation.pk])),
    ):
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    conversation.refresh_from_db()
    assert conversation.status == "open"
