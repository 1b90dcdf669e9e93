"""POST /api/v1/messages/send and manage.py send_sms, end to end with eager tasks and the locmem backend."""

import pytest
from django.core.management import CommandError, call_command

from messaging.models import Message
from providers.backends import locmem
from recipients.models import ConsentEvent, Recipient

URL = "/api/v1/messages/send"


@pytest.fixture
def bob_number(bob, make_sender):
    return make_sender(bob, number="+14155550100")


def test_it_sends_one_sms_and_reports_status(bob, bob_number, client_for, django_capture_on_commit_callbacks):
    client = client_for(bob)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(URL, {"to": "(415) 555-2671", "body": "Your code is 1234"}, format="json")
    assert response.status_code == 201, response.json()
    message_id = response.json()["id"]
    assert response.json()["status"] == "pending"  # answered before the send

    [sent] = locmem.outbox
    assert (sent.to, sent.sender, sent.body) == ("+14155552671", "+14155550100", "Your code is 1234")
    message = Message.objects.get(pk=message_id)
    assert (message.kind, message.created_by, message.segments) == ("single", bob, 1)
    recipient = Recipient.objects.get(phone="+14155552671")
    assert recipient.consent_status == "pending"
    assert not ConsentEvent.objects.filter(recipient=recipient).exists()

    status = client.get(f"/api/v1/messages/{message_id}")
    assert status.status_code == 200
    assert status.json()["status"] == "queued"
    assert status.json()["provider_message_id"].startswith("locmem-")


def test_it_sends_mms_with_media(bob, bob_number, client_for, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(bob).post(
            URL, {"to": "+14155552671", "media_urls": ["https://example.com/a.png"]}, format="json"
        )
    assert response.status_code == 201, response.json()
    assert locmem.outbox[0].media_urls == ("https://example.com/a.png",)


def test_it_refuses_opted_out_numbers(bob, bob_number, client_for, make_recipients):
    [person] = make_recipients(1, consent="opted_out")
    response = client_for(bob).post(URL, {"to": person.phone, "body": "hi"}, format="json")
    assert response.status_code == 400
    assert "opted out" in response.json()["errors"]["to"][0]
    assert not Message.objects.exists()


def test_it_refuses_a_number_the_sender_is_not_authorized_for(bob, bob_number, dave, make_sender, client_for):
    make_sender(dave, number="+14155550199")
    response = client_for(bob).post(URL, {"to": "+14155552671", "body": "hi", "sender": "+14155550199"}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"]["sender"] == ["You are not authorized to send from +14155550199."]
    assert not Message.objects.exists()


def test_a_sender_without_numbers_is_refused(bob, client_for):
    response = client_for(bob).post(URL, {"to": "+14155552671", "body": "hi"}, format="json")
    assert response.status_code == 400
    assert "not authorized to send from any number" in response.json()["errors"]["sender"][0]


def test_with_several_numbers_the_sender_must_be_chosen(
    bob, bob_number, make_sender, client_for, django_capture_on_commit_callbacks
):
    make_sender(bob, number="+14155550101", provider="flowroute")
    client = client_for(bob)
    response = client.post(URL, {"to": "+14155552671", "body": "hi"}, format="json")
    assert response.status_code == 400
    assert "several numbers" in response.json()["errors"]["sender"][0]
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(URL, {"to": "+14155552671", "body": "hi", "sender": "+1 415 555 0101"}, format="json")
    assert response.status_code == 201
    assert (response.json()["sender"], response.json()["provider"]) == ("+14155550101", "flowroute")
    assert locmem.outbox[0].sender == "+14155550101"


def test_an_inactive_grant_does_not_count(bob, make_sender, client_for):
    make_sender(bob, number="+14155550100", is_active=False)
    response = client_for(bob).post(URL, {"to": "+14155552671", "body": "hi"}, format="json")
    assert response.status_code == 400


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"to": "12", "body": "hi"}, "to"),
        ({"to": "not a number", "body": "hi"}, "to"),
        ({"to": "+14155552671", "body": "x" * 1601}, "body"),
        ({"to": "+14155552671", "body": "x" * 6000}, "body"),
        ({"to": "+14155552671", "body": ""}, "body"),
        (
            {"to": "+14155552671", "body": "hi", "media_urls": [f"https://example.com/{i}.png" for i in range(11)]},
            "media_urls",
        ),
        ({"to": "+14155552671", "body": "hi", "media_urls": ["http://example.com/a.png"]}, "media_urls"),
        ({"to": "+14155552671", "body": "hi", "media_urls": "https://example.com/a.png"}, "media_urls"),
        ({"to": 14155552671, "body": ["hi"]}, "body"),
        ({"body": "hi"}, "to"),
    ],
)
def test_bad_input_is_a_400_with_field_errors(bob, bob_number, client_for, payload, field):
    response = client_for(bob).post(URL, payload, format="json")
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["message"]
    assert field in body["errors"], body
    assert not Message.objects.exists()


def test_viewers_cannot_send(carol, make_sender, client_for):
    make_sender(carol)
    response = client_for(carol).post(URL, {"to": "+14155552671", "body": "hi"}, format="json")
    assert response.status_code == 403
    assert response.json() == {"message": "Viewers have read-only access.", "errors": {}}


def test_anonymous_gets_401(client_for, db):
    response = client_for(None).post(URL, {"to": "+14155552671", "body": "hi"}, format="json")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_an_admin_sends_only_from_their_own_numbers(alice, bob_number, client_for):
    response = client_for(alice).post(
        URL, {"to": "+14155552671", "body": "hi", "sender": "+14155550100"}, format="json"
    )
    assert response.status_code == 400
    assert "not authorized" in response.json()["errors"]["sender"][0]


def test_status_of_someone_elses_message_is_404(bob, bob_number, dave, client_for):
    response = client_for(bob).post(URL, {"to": "+14155552671", "body": "hi"}, format="json")
    message_id = response.json()["id"]
    assert client_for(dave).get(f"/api/v1/messages/{message_id}").status_code == 404
    assert client_for(bob).get(f"/api/v1/messages/{message_id}").status_code == 200


def test_a_real_api_token_works(bob, bob_number, token_client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = token_client(bob).post(URL, {"to": "+14155552671", "body": "via token"}, format="json")
    assert response.status_code == 201
    assert locmem.outbox[0].body == "via token"


def test_a_wrong_token_is_401(db, client_for):
    client = client_for(None)
    client.credentials(HTTP_AUTHORIZATION="Bearer smsp_nope_nope")
    response = client.get("/api/v1/messages")
    assert response.status_code == 401
    assert response.json()["message"] == "Invalid API token."


def test_management_command_sends(bob, bob_number, capsys, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        call_command("send_sms", "--to", "+14155552671", "--body", "smoke test", "--user", "bob")
    message = Message.objects.get()
    assert f"message {message.pk}" in capsys.readouterr().out
    assert locmem.outbox[0].body == "smoke test"


def test_management_command_reports_errors(bob, bob_number, carol):
    with pytest.raises(CommandError, match="not authorized"):
        call_command("send_sms", "--to", "+14155552671", "--body", "x", "--from", "+14155550111", "--user", "bob")
    with pytest.raises(CommandError, match="role"):
        call_command("send_sms", "--to", "+14155552671", "--body", "x", "--user", "carol")
    with pytest.raises(CommandError, match="No user"):
        call_command("send_sms", "--to", "+14155552671", "--body", "x", "--user", "nobody")
    assert not Message.objects.exists()
