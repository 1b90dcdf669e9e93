"""REST endpoints under /api/v1/relay/, with real API tokens: roles, masking, errors."""

from __future__ import annotations

import pytest
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from messaging.models import Message
from relay import services
from relay.models import Conversation, RelayNumber
from tests.relay.conftest import A, B, C

pytestmark = pytest.mark.django_db
API = "/api/v1/relay"


def client_for(user) -> APIClient:
    from accounts.services import api_token_create

    _, raw = api_token_create(actor=user, user=user, name="test")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


@pytest.fixture
def conversation(make_relay_numbers):
    make_relay_numbers(2)
    return services.conversation_create(participant_a=A, participant_b=B)


def test_every_endpoint_needs_authentication(conversation):
    anonymous = APIClient()
    pk = conversation.pk
    for method, url in [
        ("get", f"{API}/conversations"),
        ("post", f"{API}/conversations"),
        ("get", f"{API}/conversations/{pk}"),
        ("post", f"{API}/conversations/{pk}/close"),
        ("get", f"{API}/conversations/{pk}/transcript"),
        ("get", f"{API}/numbers"),
        ("post", f"{API}/numbers"),
        ("patch", f"{API}/numbers/{conversation.virtual_for_a.pk}"),
    ]:
        assert getattr(anonymous, method)(url, {}, format="json").status_code == 401, url
    bad = APIClient()
    bad.credentials(HTTP_AUTHORIZATION="Bearer nope")
    assert bad.get(f"{API}/conversations").status_code == 401


def test_sender_creates_and_sees_masked_numbers(bob, make_relay_numbers):
    make_relay_numbers(2)
    response = client_for(bob).post(
        f"{API}/conversations",
        {"participant_a": "4152000001", "participant_b": B, "name_b": "Rider", "expires_in_hours": 1},
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["participant_a"] != A and body["participant_a"].endswith("0001")
    assert body["virtual_for_a"].startswith("+1415555") and body["expires_at"] and body["created_by"] == "bob"
    conv = Conversation.objects.get()
    assert (conv.participant_a, conv.participant_b, conv.name_b) == (A, B, "Rider")


def test_admin_sees_real_numbers_viewer_sees_masked(alice, carol, conversation):
    (row,) = client_for(alice).get(f"{API}/conversations").json()["results"]
    assert (row["participant_a"], row["participant_b"]) == (A, B)
    (row,) = client_for(carol).get(f"{API}/conversations?status=open").json()["results"]
    assert A not in str(row) and B not in str(row)
    assert client_for(carol).get(f"{API}/conversations?status=closed").json()["results"] == []
    assert client_for(carol).get(f"{API}/conversations?status=bogus").status_code == 400


def test_viewer_cannot_create_or_close(carol, conversation):
    api = client_for(carol)
    assert api.post(f"{API}/conversations", {"participant_a": A, "participant_b": "+14152000009"}).status_code == 403
    assert api.post(f"{API}/conversations/{conversation.pk}/close").status_code == 403
    assert Conversation.objects.count() == 1 and Conversation.objects.get().status == "open"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"participant_a": "garbage", "participant_b": B}, "participant_a"),
        ({"participant_a": A, "participant_b": A}, "participant_b"),
        ({"participant_a": A}, "participant_b"),
        ({"participant_a": A, "participant_b": "+14152000009", "expires_in_hours": -1}, "expires_in_hours"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(bob, make_relay_numbers, payload, field):
    make_relay_numbers(1)
    response = client_for(bob).post(f"{API}/conversations", payload, format="json")
    assert response.status_code == 400 and field in response.json()["errors"]


def test_pool_exhaustion_is_a_409_with_a_clear_message(bob, make_relay_numbers):
    make_relay_numbers(1)
    api = client_for(bob)
    assert api.post(f"{API}/conversations", {"participant_a": A, "participant_b": B}).status_code == 201
    response = api.post(f"{API}/conversations", {"participant_a": A, "participant_b": "+14152000009"})
    assert response.status_code == 409 and "No relay number is free" in response.json()["message"]


def test_close_then_close_again(bob, conversation):
    api = client_for(bob)
    response = api.post(f"{API}/conversations/{conversation.pk}/close")
    assert response.status_code == 200 and response.json()["status"] == "closed"
    assert api.post(f"{API}/conversations/{conversation.pk}/close").status_code == 409
    assert api.post(f"{API}/conversations/999999/close").status_code == 404


def test_transcript_masks_for_non_admins(alice, carol, conversation):
    from providers.status import InboundSMS

    services.relay_route_inbound(
        InboundSMS(
            provider="plivo",
            sender=A,
            to=conversation.virtual_for_a.number,
            text="hello",
            media_urls=("https://m.example/1.png",),
        )
    )
    url = f"{API}/conversations/{conversation.pk}/transcript"
    (row,) = client_for(alice).get(url).json()
    assert (row["from_number"], row["text"], row["media_urls"], row["outcome"]) == (
        A,
        "hello",
        ["https://m.example/1.png"],
        "relayed",
    )
    assert row["message_id"] is not None
    (row,) = client_for(carol).get(url).json()
    assert row["from_number"] != A and row["text"] == "hello"
    assert client_for(carol).get(f"{API}/conversations/{conversation.pk}").status_code == 200
    assert client_for(carol).get(f"{API}/conversations/999999/transcript").status_code == 404


def test_only_admins_manage_relay_numbers(alice, bob):
    assert client_for(bob).post(f"{API}/numbers", {"number": "+14155550150"}).status_code == 403
    admin = client_for(alice)
    response = admin.post(f"{API}/numbers", {"number": "415 555 0150", "provider": "flowroute", "label": "x"})
    assert response.status_code == 201 and response.json()["number"] == "+14155550150"
    assert admin.post(f"{API}/numbers", {"number": "+14155550150"}).status_code == 400
    assert admin.post(f"{API}/numbers", {"number": "junk"}).status_code == 400
    number = RelayNumber.objects.get()
    assert client_for(bob).patch(f"{API}/numbers/{number.pk}", {"is_active": False}).status_code == 403
    assert admin.patch(f"{API}/numbers/{number.pk}", {"is_active": False}, format="json").status_code == 200
    number.refresh_from_db()
    assert number.is_active is False
    assert [n["number"] for n in client_for(bob).get(f"{API}/numbers").json()] == ["+14155550150"]


def test_an_unapproved_admin_is_refused_even_with_a_session(make_user, conversation):
    mallory = make_user("mallory", role="admin", is_approved=False)
    api = APIClient()
    api.force_login(mallory)
    assert api.get(f"{API}/conversations").status_code == 401
    assert api.get(f"{API}/conversations/{conversation.pk}/transcript").status_code == 401
    assert api.get(f"{API}/numbers").status_code == 401
    assert api.post(f"{API}/conversations/{conversation.pk}/close").status_code == 401
    conversation.refresh_from_db()
    assert conversation.status == "open"


@pytest.mark.parametrize("raw", ["abc", "null,null", "-1", "99999999999999999999", "\uff11\uff12"])
def test_a_malformed_id_is_a_json_404(alice, conversation, raw):
    client = client_for(alice)
    for method, url in [
        ("get", f"{API}/conversations/{raw}"),
        ("post", f"{API}/conversations/{raw}/close"),
        ("get", f"{API}/conversations/{raw}/transcript"),
        ("get", f"{API}/numbers/{raw}"),
        ("patch", f"{API}/numbers/{raw}"),
    ]:
        response = getattr(client, method)(url, {}, format="json")
        assert response.status_code == 404, url
        assert response["Content-Type"] == "application/json", url
        assert response.json()["message"], url


def test_a_replayed_create_returns_the_stored_response_and_opens_one_conversation(
    bob, make_relay_numbers, django_capture_on_commit_callbacks
):
    make_relay_numbers(4)
    api = client_for(bob)
    payload = {"participant_a": A, "participant_b": B, "name_a": "Driver"}
    with django_capture_on_commit_callbacks(execute=True):
        first = api.post(f"{API}/conversations", payload, format="json", HTTP_IDEMPOTENCY_KEY="open-1")
        again = api.post(f"{API}/conversations", payload, format="json", HTTP_IDEMPOTENCY_KEY="open-1")
    assert (first.status_code, again.status_code) == (201, 201), first.json()
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert Conversation.objects.count() == 1
    assert Message.objects.count() == 2  # the two introductions, sent once
    other = api.post(
        f"{API}/conversations", {**payload, "participant_b": C}, format="json", HTTP_IDEMPOTENCY_KEY="open-1"
    )
    assert other.status_code == 422 and Conversation.objects.count() == 1

    close = f"{API}/conversations/{first.json()['id']}/close"
    closed = api.post(close, HTTP_IDEMPOTENCY_KEY="close-1")
    replayed = api.post(close, HTTP_IDEMPOTENCY_KEY="close-1")
    assert (closed.status_code, replayed.status_code) == (200, 200)
    assert replayed["Idempotent-Replayed"] == "true" and replayed.json() == closed.json()
    assert Message.objects.count() == 4  # and the two goodbyes, once


def test_relay_posts_document_the_idempotency_key():
    paths = SchemaGenerator().get_schema(request=None, public=True)["paths"]
    for path in ["/api/v1/relay/conversations", "/api/v1/relay/conversations/{id}/close", "/api/v1/relay/numbers"]:
        assert "Idempotency-Key" in [p["name"] for p in paths[path]["post"].get("parameters", [])], path


def test_messages_api_masks_relay_participants_like_the_relay_pages(alice, bob, carol, conversation, make_recipients):
    """GET /api/v1/messages (list, ?kind=relay, ?recipient=, detail) follows the relay's rule: admins see the
    real numbers; viewers and senders see them masked, with no recipient id that would lead to the number."""
    from recipients.models import InboundMessage, Recipient

    (recipient,) = make_recipients(1, start=1)  # +14152000001 is participant A
    assert recipient.phone == A
    Message.objects.filter(kind=Message.Kind.RELAY, to=A).update(recipient=recipient)
    Message.objects.filter(kind=Message.Kind.RELAY).update(created_by=bob)  # bob's own, so he sees them
    inbound = InboundMessage.objects.create(provider="plivo", sender=B, to="+14155550100", text="hi", kind="relay")
    relay_ids = set(Message.objects.filter(kind=Message.Kind.RELAY).values_list("pk", flat=True))
    assert relay_ids, "conversation_create queues the introductions"
    for user in (carol, bob):
        api = client_for(user)
        rows = api.get("/api/v1/messages?kind=relay").json()["results"]
        assert {r["id"] for r in rows} == relay_ids
        for row in rows + [api.get(f"/api/v1/messages/{pk}").json() for pk in relay_ids]:
            assert row["to"] not in (A, B) and row["to"][-4:] in (A[-4:], B[-4:]) and row["recipient"] is None
        assert api.get(f"/api/v1/messages?recipient={recipient.pk}").json()["results"] == []
    row = client_for(carol).get(f"/api/v1/inbound-messages/{inbound.pk}").json()
    assert row["sender"] != B and row["sender"].endswith(B[-4:]) and row["recipient"] is None
    rows = client_for(alice).get("/api/v1/messages?kind=relay").json()["results"]
    assert {r["to"] for r in rows} == {A, B}
    assert any(r["recipient"] == recipient.pk for r in rows)
    assert Recipient.objects.count() == 1
