"""Launching a campaign end to end, with tasks run eagerly in this process."""

import pytest
from django.core.exceptions import ValidationError

from campaigns.models import Campaign
from campaigns.selectors import campaign_stats
from campaigns.services import TransitionError, campaign_launch
from campaigns.tasks import run_sweep
from messaging.models import Message
from providers.backends import locmem


@pytest.fixture
def ready_campaign(bob, make_sender, make_recipients, make_campaign):
    make_recipients(5, recipient_list="customers")
    make_recipients(2, recipient_list="customers", consent="opted_out")
    make_recipients(2, recipient_list="customers", consent="pending")
    return make_campaign(bob, lists=["customers"], senders=[make_sender(bob)])


def test_it_sends_one_message_per_opted_in_member(
    bob, ready_campaign, make_recipients, django_capture_on_commit_callbacks
):
    from recipients.models import Membership, Recipient, RecipientList

    # Someone in two lists gets one message.
    vip = RecipientList.objects.create(name="vip")
    first = Recipient.objects.filter(consent_status="opted_in").first()
    Membership.objects.create(recipient_list=vip, recipient=first)
    ready_campaign.lists.add(vip)

    with django_capture_on_commit_callbacks(execute=True):
        campaign_launch(campaign=ready_campaign, user=bob)
    run_sweep()

    assert Message.objects.filter(campaign=ready_campaign).count() == 5
    assert sorted(m.to for m in locmem.outbox) == sorted(
        Recipient.objects.filter(consent_status="opted_in").values_list("phone", flat=True)
    )
    assert locmem.outbox[0].body.startswith("Hello P")
    ready_campaign.refresh_from_db()
    assert ready_campaign.status == Campaign.Status.COMPLETED
    stats = campaign_stats(campaign=ready_campaign)
    assert stats["total"] == 5 and stats["counts"]["queued"] == 5 and stats["counts"]["waiting"] == 0


def test_launching_twice_creates_nothing_twice(bob, ready_campaign, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        campaign_launch(campaign=ready_campaign, user=bob)
    with pytest.raises(TransitionError):
        campaign_launch(campaign=ready_campaign, user=bob)
    assert Message.objects.filter(campaign=ready_campaign).count() == 5
    assert len(locmem.outbox) == 5


@pytest.mark.parametrize("field", ["body", "lists", "senders"])
def test_it_refuses_to_launch_without(field, bob, ready_campaign):
    if field == "body":
        ready_campaign.body = "  "
        ready_campaign.save()
    else:
        getattr(ready_campaign, field).clear()
    with pytest.raises(ValidationError) as exc:
        campaign_launch(campaign=ready_campaign, user=bob)
    assert field in exc.value.message_dict
    ready_campaign.refresh_from_db()
    assert ready_campaign.status == Campaign.Status.DRAFT


# --- Nobody reachable: launch is refused, with the reason ------------------------------

NOBODY_REASONS = [
    pytest.param({}, "The chosen lists are empty", id="empty-lists"),
    pytest.param({"opted_out": 3}, "All 3 members of the chosen lists have opted out", id="all-opted-out"),
    pytest.param({"pending": 2}, "Nobody has opted in: none of the 2 members", id="nobody-opted-in"),
    pytest.param({"pending": 1, "opted_out": 2}, "(1 pending, 2 opted out)", id="pending-and-opted-out"),
]


@pytest.fixture
def unreachable(bob, make_sender, make_recipients, make_campaign):
    """``unreachable({"pending": n, ...})``: a draft whose list has only these members (none opted in)."""
    from recipients.models import RecipientList

    def make(members: dict[str, int]):
        customers = RecipientList.objects.create(name="customers")
        for consent, n in members.items():
            make_recipients(n, recipient_list=customers, consent=consent)
        return make_campaign(bob, lists=[customers], senders=[make_sender(bob)])

    return make


@pytest.mark.parametrize(("members", "reason"), NOBODY_REASONS)
def test_a_launch_that_would_reach_nobody_is_refused_with_the_reason(bob, unreachable, members, reason):
    campaign = unreachable(members)
    with pytest.raises(ValidationError) as err:
        campaign_launch(campaign=campaign, user=bob)
    (message,) = err.value.message_dict["lists"]
    assert reason in message
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.DRAFT
    assert not Message.objects.filter(campaign=campaign).exists()


def test_one_opted_in_member_in_any_chosen_list_is_enough(bob, unreachable, make_recipients, make_campaign):
    from recipients.models import RecipientList

    campaign = unreachable({"opted_out": 2})
    other = RecipientList.objects.create(name="other")
    make_recipients(1, recipient_list=other)
    campaign.lists.add(other)
    assert campaign_launch(campaign=campaign, user=bob).status == Campaign.Status.SENDING
