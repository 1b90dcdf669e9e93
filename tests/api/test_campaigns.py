"""Campaign endpoints: ownership, editing while draft, lifecycle actions, preview and stats."""

import pytest

from campaigns.models import Campaign
from messaging.models import Message
from providers.backends import locmem

BASE = "/api/v1/campaigns"


@pytest.fixture
def setup(bob, make_sender, make_recipients):
    make_recipients(3, recipient_list="customers")
    make_recipients(1, recipient_list="customers", consent="opted_out")
    return make_sender(bob)


@pytest.fixture
def draft(bob, setup, make_campaign):
    return make_campaign(bob, lists=["customers"], senders=[setup])


def test_a_sender_creates_a_campaign_from_own_numbers(bob, setup, client_for):
    from recipients.models import RecipientList

    customers = RecipientList.objects.get(name="customers")
    response = client_for(bob).post(
        BASE,
        {"name": "Sale", "body": "Hi {{ first_name }}", "lists": [customers.pk], "senders": [setup.pk]},
        format="json",
    )
    assert response.status_code == 201, response.json()
    campaign = Campaign.objects.get(pk=response.json()["id"])
    assert (campaign.created_by, campaign.status) == (bob, "draft")
    assert response.json()["created_by"] == "bob"


def test_another_persons_sender_cannot_be_chosen(bob, dave, setup, client_for):
    response = client_for(dave).post(BASE, {"name": "x", "body": "x", "senders": [setup.pk]}, format="json")
    assert response.status_code == 400
    assert "senders" in response.json()["errors"]


def test_media_urls_are_validated(bob, client_for):
    response = client_for(bob).post(
        BASE, {"name": "x", "body": "x", "media_urls": ["ftp://example.com/a.png"]}, format="json"
    )
    assert response.status_code == 400
    assert "https" in response.json()["errors"]["media_urls"][0]


def test_visibility(bob, dave, alice, carol, draft, client_for):
    assert client_for(dave).get(f"{BASE}/{draft.pk}").status_code == 404
    assert client_for(dave).get(BASE).json()["results"] == []
    for user in (bob, alice, carol):
        assert client_for(user).get(f"{BASE}/{draft.pk}").status_code == 200
        assert [c["id"] for c in client_for(user).get(BASE).json()["results"]] == [draft.pk]


def test_edit_while_draft_then_409(bob, draft, client_for):
    client = client_for(bob)
    response = client.patch(f"{BASE}/{draft.pk}", {"body": "Changed"}, format="json")
    assert response.status_code == 200
    assert response.json()["body"] == "Changed"
    Campaign.objects.filter(pk=draft.pk).update(status="sending")
    response = client.patch(f"{BASE}/{draft.pk}", {"body": "Again"}, format="json")
    assert response.status_code == 409
    assert response.json()["message"] == "Only a draft campaign can be edited."
    assert client.delete(f"{BASE}/{draft.pk}").status_code == 409
    draft.refresh_from_db()
    assert draft.body == "Changed"


def test_viewers_and_other_senders_cannot_change_it(carol, dave, draft, client_for):
    assert client_for(carol).patch(f"{BASE}/{draft.pk}", {"body": "x"}, format="json").status_code == 403
    assert client_for(carol).post(f"{BASE}/{draft.pk}/launch").status_code == 403
    assert client_for(dave).post(f"{BASE}/{draft.pk}/launch").status_code == 404


def test_preview_counts_opted_in_people_and_segments(bob, draft, client_for):
    response = client_for(bob).get(f"{BASE}/{draft.pk}/preview")
    assert response.status_code == 200
    body = response.json()
    assert body["recipient_count"] == 3
    assert body["text"].startswith("Hello P")
    assert (body["segments"], body["encoding"], body["errors"]) == (1, "GSM-7", [])


def test_launch_sends_and_stats_come_from_counters(bob, draft, client_for, django_capture_on_commit_callbacks):
    from campaigns.tasks import run_sweep

    client = client_for(bob)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"{BASE}/{draft.pk}/launch", HTTP_IDEMPOTENCY_KEY="launch-1")
    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "sending"
    run_sweep()
    assert len(locmem.outbox) == 3

    again = client.post(f"{BASE}/{draft.pk}/launch", HTTP_IDEMPOTENCY_KEY="launch-1")
    assert again.status_code == 200 and again["Idempotent-Replayed"] == "true"
    twice = client.post(f"{BASE}/{draft.pk}/launch")
    assert twice.status_code == 409
    assert "Only a draft" in twice.json()["message"]
    assert Message.objects.filter(campaign=draft).count() == 3

    stats = client.get(f"{BASE}/{draft.pk}/stats").json()
    assert stats["total"] == 3
    assert sum(stats["counts"].values()) == 3


def test_launch_validation_errors_are_400(bob, make_campaign, client_for):
    campaign = make_campaign(bob, lists=[], senders=[])
    response = client_for(bob).post(f"{BASE}/{campaign.pk}/launch")
    assert response.status_code == 400
    assert {"lists", "senders"} <= set(response.json()["errors"])


def test_pause_resume_cancel_and_wrong_transitions(bob, alice, draft, client_for):
    client = client_for(bob)
    assert client.post(f"{BASE}/{draft.pk}/pause").status_code == 409
    assert client.post(f"{BASE}/{draft.pk}/resume").status_code == 409
    assert client.post(f"{BASE}/{draft.pk}/retry-failed").status_code == 409
    Campaign.objects.filter(pk=draft.pk).update(status="sending")
    response = client.post(f"{BASE}/{draft.pk}/pause", {"reason": "typo"}, format="json")
    assert (response.status_code, response.json()["status"], response.json()["pause_reason"]) == (200, "paused", "typo")
    assert client.post(f"{BASE}/{draft.pk}/resume").json()["status"] == "sending"
    # An admin may stop anyone's campaign.
    assert client_for(alice).post(f"{BASE}/{draft.pk}/cancel").json()["status"] == "cancelled"
    assert client.post(f"{BASE}/{draft.pk}/cancel").status_code == 409


def test_retry_failed(bob, draft, client_for, make_recipients):
    Campaign.objects.filter(pk=draft.pk).update(status="completed")
    person = make_recipients(1)[0]
    Message.objects.create(campaign=draft, recipient=person, to=person.phone, status="failed", error_permanent=False)
    response = client_for(bob).post(f"{BASE}/{draft.pk}/retry-failed")
    assert response.status_code == 200
    assert response.json() == {"retried": 1}
