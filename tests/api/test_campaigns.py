"""Campaign endpoints: ownership, editing while draft, lifecycle actions, preview and stats."""

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from accounts.models import AuditEvent
from campaigns import services
from campaigns.drafts import campaign_update_draft
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


def test_the_stop_footer_is_on_unless_turned_off(bob, client_for):
    client = client_for(bob)
    default = client.post(BASE, {"name": "a", "body": "Sale today"}, format="json")
    assert default.status_code == 201, default.json()
    assert default.json()["add_stop_footer"] is True
    assert Campaign.objects.get(pk=default.json()["id"]).add_stop_footer is True
    off = client.post(BASE, {"name": "b", "body": "Sale", "add_stop_footer": False}, format="json")
    assert off.json()["add_stop_footer"] is False
    # A PATCH of something else keeps the choice.
    patched = client.patch(f"{BASE}/{off.json()['id']}", {"body": "Sale!"}, format="json")
    assert patched.json()["add_stop_footer"] is False
    preview = client.get(f"{BASE}/{default.json()['id']}/preview").json()
    assert preview["text"] == "Sale today\nReply STOP to opt out"


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
    assert body["sample"] is False  # a real opted-in member
    assert (body["segments"], body["encoding"], body["errors"]) == (1, "GSM-7", [])


def test_preview_says_sample_when_nobody_is_opted_in(bob, make_recipients, make_campaign, client_for):
    from recipients.models import RecipientList

    pending = RecipientList.objects.create(name="pending only")
    make_recipients(2, recipient_list=pending, consent="pending")
    campaign = make_campaign(bob, lists=[pending])
    body = client_for(bob).get(f"{BASE}/{campaign.pk}/preview").json()
    assert (body["sample"], body["recipient_count"]) == (True, 0)


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


def test_a_launch_answers_how_many_it_sends_to_before_the_messages_exist(bob, draft, client_for):
    # No on-commit callbacks run here, so no message row exists yet: the count comes from the launch itself.
    client = client_for(bob)
    assert client.get(f"{BASE}/{draft.pk}").json()["recipient_total"] == 0
    response = client.post(f"{BASE}/{draft.pk}/launch")
    assert response.status_code == 200 and response.json()["recipient_total"] == 3
    assert client.get(f"{BASE}/{draft.pk}").json()["recipient_total"] == 3
    assert not Message.objects.filter(campaign=draft).exists()


def test_launch_validation_errors_are_400(bob, make_campaign, client_for):
    campaign = make_campaign(bob, lists=[], senders=[])
    response = client_for(bob).post(f"{BASE}/{campaign.pk}/launch")
    assert response.status_code == 400
    assert {"lists", "senders"} <= set(response.json()["errors"])


@pytest.mark.parametrize(
    ("members", "reason"),
    [
        ({}, "The chosen lists are empty"),
        ({"opted_out": 2}, "All 2 members of the chosen lists have opted out"),
        ({"pending": 2, "opted_out": 1}, "Nobody has opted in: none of the 3 members"),
    ],
)
def test_a_launch_that_would_reach_nobody_is_400_on_lists(
    bob, make_sender, make_recipients, make_campaign, client_for, members, reason
):
    from recipients.models import RecipientList

    empty = RecipientList.objects.create(name="nobody here")
    for consent, n in members.items():
        make_recipients(n, recipient_list=empty, consent=consent)
    campaign = make_campaign(bob, lists=[empty], senders=[make_sender(bob)])
    response = client_for(bob).post(f"{BASE}/{campaign.pk}/launch")
    assert response.status_code == 400, response.json()
    (message,) = response.json()["errors"]["lists"]
    assert reason in message
    campaign.refresh_from_db()
    assert campaign.status == "draft"


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


def _audit(campaign_pk: int) -> list[tuple[str, str | None]]:
    events = AuditEvent.objects.filter(target_type="campaigns.campaign", target_id=str(campaign_pk))
    return [(e.action, e.actor.username if e.actor else None) for e in events.order_by("pk")]


def test_api_writes_go_through_the_draft_services_and_are_audited(bob, setup, client_for):
    from recipients.models import RecipientList

    client = client_for(bob)
    customers = RecipientList.objects.get(name="customers")
    created = client.post(BASE, {"name": "Sale", "body": "Hi", "lists": [customers.pk]}, format="json")
    assert created.status_code == 201, created.json()
    pk = created.json()["id"]
    edited = client.patch(f"{BASE}/{pk}", {"body": "Hi there", "senders": [setup.pk]}, format="json")
    assert edited.status_code == 200, edited.json()
    # Fields not sent are kept: a PATCH of the body leaves the lists alone.
    assert (edited.json()["body"], edited.json()["lists"], edited.json()["senders"]) == (
        "Hi there",
        [customers.pk],
        [setup.pk],
    )
    assert _audit(pk) == [("campaign.create", "bob"), ("campaign.edit", "bob")]
    assert AuditEvent.objects.get(action="campaign.edit").detail == "body, senders"
    assert client.delete(f"{BASE}/{pk}").status_code == 204
    assert not Campaign.objects.filter(pk=pk).exists()
    assert _audit(pk)[-1] == ("campaign.delete", "bob")


@pytest.mark.parametrize("status", ["scheduled", "sending", "paused", "completed", "cancelled"])
def test_an_edit_or_delete_of_a_non_draft_is_409_and_changes_nothing(bob, draft, client_for, status):
    from recipients.models import RecipientList

    Campaign.objects.filter(pk=draft.pk).update(status=status)
    before = Campaign.objects.get(pk=draft.pk)
    other = RecipientList.objects.create(name="other")
    client = client_for(bob)
    for method, payload in [
        ("patch", {"body": "Changed", "lists": [other.pk]}),
        ("put", {"name": "Renamed", "body": "Changed", "lists": [other.pk]}),
    ]:
        response = getattr(client, method)(f"{BASE}/{draft.pk}", payload, format="json")
        assert response.status_code == 409, response.json()
        assert response.json()["message"] == "Only a draft campaign can be edited."
    response = client.delete(f"{BASE}/{draft.pk}")
    assert response.status_code == 409
    assert "cancel it instead" in response.json()["message"]
    after = Campaign.objects.get(pk=draft.pk)
    assert (after.name, after.body, after.status, after.updated_at) == (
        before.name,
        before.body,
        status,
        before.updated_at,
    )
    assert [lst.name for lst in after.lists.all()] == ["customers"]
    assert _audit(draft.pk) == []


def _wait_for_a_lock_wait(timeout: float = 10.0) -> None:
    """Until another connection of this database waits for a row lock (the racing request)."""
    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            if cursor.fetchone()[0]:
                return
            time.sleep(0.02)
    raise AssertionError("the second request never waited for the row lock")


def _in_thread(target) -> threading.Thread:
    def run():
        try:
            target()
        finally:
            connection.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@pytest.mark.django_db(transaction=True)
def test_an_edit_racing_a_launch_cannot_change_the_launched_campaign(bob, setup, make_campaign, client_for):
    """The launch holds the row (launched, not yet committed) while the API edit arrives.

    Checking "draft" and then saving would read the old status, wait, and overwrite the launched
    campaign after the launch commits; the edit must instead see the launch and answer 409.
    """
    campaign = make_campaign(
        bob, lists=["customers"], senders=[setup], body="Launched body", send_at=timezone.now() + timedelta(days=1)
    )
    launched, release, results = threading.Event(), threading.Event(), {}

    def launch():
        with transaction.atomic():
            services.campaign_launch(campaign=Campaign.objects.get(pk=campaign.pk), user=bob)
            launched.set()
            release.wait(10)  # the row stays locked until this commit

    def edit():
        results["edit"] = client_for(bob).patch(f"{BASE}/{campaign.pk}", {"body": "Edited body"}, format="json")

    launcher = _in_thread(launch)
    assert launched.wait(10)
    editor = _in_thread(edit)
    _wait_for_a_lock_wait()
    release.set()
    launcher.join(10)
    editor.join(10)
    assert results["edit"].status_code == 409, results["edit"].json()
    campaign.refresh_from_db()
    assert (campaign.status, campaign.body) == ("scheduled", "Launched body")
    assert [a for a, _ in _audit(campaign.pk)] == ["campaign.launch"]


@pytest.mark.django_db(transaction=True)
def test_a_launch_racing_an_edit_validates_what_the_edit_saved(bob, setup, make_campaign, client_for):
    """The other order: an edit in flight holds the row, so the launch waits and checks the edited body."""
    campaign = make_campaign(bob, lists=["customers"], senders=[setup], send_at=timezone.now() + timedelta(days=1))
    edited, release, results = threading.Event(), threading.Event(), {}

    def edit():
        with transaction.atomic():
            campaign_update_draft(campaign=Campaign.objects.get(pk=campaign.pk), user=bob, body="Hi {{ nickname }}")
            edited.set()
            release.wait(10)

    def launch():
        results["launch"] = client_for(bob).post(f"{BASE}/{campaign.pk}/launch")

    editor = _in_thread(edit)
    assert edited.wait(10)
    launcher = _in_thread(launch)
    _wait_for_a_lock_wait()
    release.set()
    editor.join(10)
    launcher.join(10)
    assert results["launch"].status_code == 400, results["launch"].json()
    assert "nickname" in str(results["launch"].json()["errors"]["body"])
    campaign.refresh_from_db()
    assert (campaign.status, campaign.body) == ("draft", "Hi {{ nickname }}")
