"""Issue 18.4: what an integrating system needs over REST without the web UI."""

from __future__ import annotations

import pytest
from django.test import override_settings
from drf_spectacular.generators import SchemaGenerator

from campaigns.models import Campaign, CampaignEvent
from messaging.models import Message
from recipients.models import Recipient

OUR_NUMBER = "+14155550100"


def test_me_includes_the_id_that_senders_take(alice, client_for):
    body = client_for(alice).get("/api/v1/accounts/me").json()
    assert body["id"] == alice.pk and body["username"] == "alice"


@pytest.mark.parametrize(
    ("status", "final"),
    [("draft", False), ("sending", False), ("paused", False), ("completed", True), ("cancelled", True)],
)
def test_stats_say_the_campaign_status_and_whether_it_is_final(bob, client_for, make_campaign, status, final):
    campaign = make_campaign(bob, status=status)
    body = client_for(bob).get(f"/api/v1/campaigns/{campaign.pk}/stats").json()
    assert (body["status"], body["final"]) == (status, final)


def test_campaign_events_are_listed_newest_first_and_only_for_those_who_see_the_campaign(
    bob, dave, carol, client_for, make_campaign
):
    campaign = make_campaign(bob)
    other = make_campaign(bob, name="other")
    first = CampaignEvent.objects.create(campaign=campaign, kind="failover", detail="plivo -> flowroute")
    second = CampaignEvent.objects.create(campaign=campaign, kind="auto_pause", detail="opt-out rate")
    CampaignEvent.objects.create(campaign=other, kind="expiry", detail="not this one")
    body = client_for(bob).get(f"/api/v1/campaigns/{campaign.pk}/events").json()
    assert [(e["id"], e["kind"], e["detail"]) for e in body["results"]] == [
        (second.pk, "auto_pause", "opt-out rate"),
        (first.pk, "failover", "plivo -> flowroute"),
    ]
    assert client_for(carol).get(f"/api/v1/campaigns/{campaign.pk}/events").status_code == 200  # viewers read all
    assert client_for(dave).get(f"/api/v1/campaigns/{campaign.pk}/events").status_code == 404  # another sender


def test_confirmation_request_sends_the_double_opt_in_text(bob, client_for, make_sender, make_recipients, settings):
    make_sender(bob, number=OUR_NUMBER)
    (person,) = make_recipients(1, consent="pending")
    response = client_for(bob).post(f"/api/v1/recipients/{person.pk}/confirmation-request", {}, format="json")
    assert response.status_code == 201, response.json()
    message = Message.objects.get(pk=response.json()["id"])
    assert (message.kind, message.to, message.sender, message.body) == (
        "confirmation",
        person.phone,
        OUR_NUMBER,
        settings.SMS_CONFIRMATION_TEXT,
    )
    person.refresh_from_db()
    assert person.confirmation_sent_at is not None


@pytest.mark.parametrize(("consent", "code"), [("opted_out", "opted_out"), ("opted_in", "already_opted_in")])
def test_confirmation_request_is_refused_with_409_unless_pending(
    bob, client_for, make_sender, make_recipients, consent, code
):
    make_sender(bob, number=OUR_NUMBER)
    (person,) = make_recipients(1, consent=consent)
    response = client_for(bob).post(f"/api/v1/recipients/{person.pk}/confirmation-request", {}, format="json")
    assert response.status_code == 409
    assert response.json()["code"] == code and response.json()["message"]
    assert not Message.objects.exists()


def test_confirmation_request_needs_one_of_your_own_numbers(bob, dave, client_for, make_sender, make_recipients):
    make_sender(dave, number=OUR_NUMBER)
    (person,) = make_recipients(1, consent="pending")
    url = f"/api/v1/recipients/{person.pk}/confirmation-request"
    response = client_for(bob).post(url, {"sender": OUR_NUMBER}, format="json")
    assert response.status_code == 400 and "not authorized" in response.json()["errors"]["sender"][0]
    assert client_for(bob).post(url, {}, format="json").status_code == 400  # no number at all
    assert not Message.objects.exists()
    assert Recipient.objects.get(pk=person.pk).confirmation_sent_at is None


@override_settings(SPECTACULAR_SETTINGS={"VERSION": "test"})
def test_the_schema_states_the_defaults_of_a_new_sender_number_and_campaign():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    sender = schema["components"]["schemas"]["AuthorizedSenderRequest"]["properties"]
    assert sender["max_mps"]["default"] == 1.0 and "1.0" in sender["max_mps"]["description"]
    assert sender["is_active"]["default"] is True
    campaign = schema["components"]["schemas"]["CampaignRequest"]["properties"]
    assert campaign["add_stop_footer"]["default"] is True and campaign["smart_encoding"]["default"] is True
    assert campaign["media_urls"]["default"] == []


def test_campaign_created_without_the_documented_fields_gets_the_documented_defaults(bob, client_for):
    response = client_for(bob).post("/api/v1/campaigns", {"name": "x", "body": "Hi"}, format="json")
    assert response.status_code == 201, response.json()
    campaign = Campaign.objects.get(pk=response.json()["id"])
    assert (campaign.add_stop_footer, campaign.smart_encoding, campaign.media_urls) == (True, True, [])
