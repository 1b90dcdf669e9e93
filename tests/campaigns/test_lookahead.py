"""Rows are made just ahead of the senders: a few batches at a time, never the whole audience at launch."""

import pytest

from campaigns import dispatch
from campaigns.models import Campaign
from campaigns.selectors import campaign_stats
from campaigns.services import campaign_cancel, campaign_launch, campaign_pause, campaign_resume
from campaigns.tasks import probe_auto_paused, run_sweep
from campaigns.ui_selectors import campaign_progress
from messaging.models import Message
from providers.backends import locmem
from recipients.models import Recipient
from recipients.services import recipient_opt_out

AUDIENCE = 23
ROOM = 4  # SMS_BATCH_SIZE 2 x SMS_BATCHES_AHEAD 2


@pytest.fixture
def big_campaign(settings, bob, make_sender, make_recipients, make_campaign):
    """A draft to more recipients than the look-ahead holds (tasks run eagerly, in this process)."""
    settings.SMS_BATCH_SIZE = 2
    settings.SMS_BATCHES_AHEAD = 2
    make_recipients(AUDIENCE, recipient_list="everyone")
    make_recipients(3, recipient_list="everyone", consent="opted_out")
    return make_campaign(bob, lists=["everyone"], senders=[make_sender(bob)])


def _opted_in_phones() -> list[str]:
    return sorted(Recipient.objects.filter(consent_status="opted_in").values_list("phone", flat=True))


def _launch_without_sending(campaign, user, capture):
    """Launch, then run only the first dispatch: its send tasks are captured, not run."""
    with capture(execute=False):
        campaign_launch(campaign=campaign, user=user)
    with capture(execute=False) as queued:
        dispatch.dispatch(campaign_id=campaign.pk)
    return queued


def test_launch_makes_only_the_look_ahead_of_rows_already_queued(bob, big_campaign, django_capture_on_commit_callbacks):
    queued = _launch_without_sending(big_campaign, bob, django_capture_on_commit_callbacks)

    rows = Message.objects.filter(campaign=big_campaign)
    assert rows.count() == ROOM and len(queued) == 1
    assert not rows.filter(enqueued_at__isnull=True).exists()  # inserted queued: no second write
    big_campaign.refresh_from_db()
    assert not big_campaign.materialized and big_campaign.recipient_total == ROOM
    # Nothing was sent, so a second dispatch finds the look-ahead full and makes nothing.
    with django_capture_on_commit_callbacks(execute=False):
        assert dispatch.dispatch(campaign_id=big_campaign.pk) == 0
    assert rows.count() == ROOM
    # Its audience was counted at launch: progress is against everyone, not the rows made so far.
    assert big_campaign.audience_total == AUDIENCE


def test_progress_counts_against_the_whole_audience_while_rows_are_still_being_made(
    bob, big_campaign, django_capture_on_commit_callbacks
):
    _launch_without_sending(big_campaign, bob, django_capture_on_commit_callbacks)
    big_campaign.refresh_from_db()
    assert big_campaign.recipient_total == ROOM and big_campaign.audience_total == AUDIENCE

    progress = campaign_progress(campaign=big_campaign)
    assert not progress.preparing
    assert (progress.processed, progress.total, progress.percent) == (0, AUDIENCE, 0.0)
    Message.objects.filter(campaign=big_campaign).update(status="queued")  # as if sent (counters untouched)
    from campaigns.counters import add_deltas

    add_deltas({(big_campaign.pk, "waiting"): -ROOM, (big_campaign.pk, "queued"): ROOM})
    progress = campaign_progress(campaign=big_campaign)
    assert (progress.processed, progress.total) == (ROOM, AUDIENCE)
    assert campaign_stats(campaign=big_campaign)["total"] == AUDIENCE


def test_a_campaign_larger_than_the_look_ahead_sends_each_recipient_exactly_once(
    bob, big_campaign, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        campaign_launch(campaign=big_campaign, user=bob)
    run_sweep()  # completes it
    run_sweep()  # and a second pass makes nothing more

    assert sorted(m.to for m in locmem.outbox) == _opted_in_phones()
    assert len(locmem.outbox) == AUDIENCE
    assert Message.objects.filter(campaign=big_campaign).count() == AUDIENCE
    big_campaign.refresh_from_db()
    assert big_campaign.materialized and big_campaign.status == Campaign.Status.COMPLETED
    stats = campaign_stats(campaign=big_campaign)
    assert stats["total"] == AUDIENCE and stats["counts"]["queued"] == AUDIENCE and stats["counts"]["waiting"] == 0
    progress = campaign_progress(campaign=big_campaign)
    assert not progress.preparing and progress.processed == AUDIENCE and progress.percent == 100.0


def test_a_pause_stops_making_rows_and_a_resume_continues_without_gaps_or_duplicates(
    bob, big_campaign, django_capture_on_commit_callbacks
):
    queued = _launch_without_sending(big_campaign, bob, django_capture_on_commit_callbacks)
    campaign_pause(campaign=big_campaign, user=bob)

    with django_capture_on_commit_callbacks(execute=True):
        for send in queued:
            send()  # the queued batches find the campaign paused and leave their rows ready
        assert dispatch.dispatch(campaign_id=big_campaign.pk) == 0
        run_sweep()
    assert Message.objects.filter(campaign=big_campaign).count() == ROOM
    assert locmem.outbox == []

    with django_capture_on_commit_callbacks(execute=True):
        campaign_resume(campaign=big_campaign, user=bob)
    run_sweep()
    assert sorted(m.to for m in locmem.outbox) == _opted_in_phones()
    big_campaign.refresh_from_db()
    assert big_campaign.status == Campaign.Status.COMPLETED and big_campaign.recipient_total == AUDIENCE


def test_an_opt_out_before_a_recipients_turn_means_no_row_and_no_send(
    bob, big_campaign, django_capture_on_commit_callbacks
):
    queued = _launch_without_sending(big_campaign, bob, django_capture_on_commit_callbacks)
    made = set(Message.objects.filter(campaign=big_campaign).values_list("recipient_id", flat=True))
    people = Recipient.objects.filter(consent_status="opted_in").order_by("pk")
    early = people.filter(pk__in=made).first()  # has a queued row already
    late = people.exclude(pk__in=made).last()  # no row yet
    assert early is not None and late is not None
    for person in (early, late):
        recipient_opt_out(recipient=person, channel="sms", evidence="STOP")

    with django_capture_on_commit_callbacks(execute=True):
        for send in queued:
            send()  # the first batches go out, and each tops the look-ahead up
    run_sweep()

    sent = sorted(m.to for m in locmem.outbox)
    assert early.phone not in sent and late.phone not in sent
    assert len(sent) == len(set(sent)) == AUDIENCE - 2
    assert Message.objects.get(campaign=big_campaign, recipient=early).status == "skipped"
    assert not Message.objects.filter(campaign=big_campaign, recipient=late).exists()
    big_campaign.refresh_from_db()
    assert big_campaign.status == Campaign.Status.COMPLETED
    assert campaign_stats(campaign=big_campaign)["total"] == AUDIENCE - 1


def test_a_cancel_makes_no_more_rows(bob, big_campaign, django_capture_on_commit_callbacks):
    _launch_without_sending(big_campaign, bob, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        campaign_cancel(campaign=big_campaign, user=bob)
        run_sweep()
        assert dispatch.dispatch(campaign_id=big_campaign.pk) == 0

    rows = Message.objects.filter(campaign=big_campaign)
    assert rows.count() == ROOM and set(rows.values_list("status", flat=True)) == {"cancelled"}
    assert locmem.outbox == []


def test_the_probe_of_an_auto_paused_campaign_makes_a_row_when_none_is_left(
    bob, big_campaign, django_capture_on_commit_callbacks
):
    _launch_without_sending(big_campaign, bob, django_capture_on_commit_callbacks)
    # Every row made so far is done; the provider failed the campaign into an auto-pause.
    Message.objects.filter(campaign=big_campaign).update(status="failed")
    Campaign.objects.filter(pk=big_campaign.pk).update(status=Campaign.Status.PAUSED, auto_paused=True)

    with django_capture_on_commit_callbacks(execute=True):
        probe_auto_paused()
    run_sweep()

    big_campaign.refresh_from_db()
    assert big_campaign.status == Campaign.Status.COMPLETED
    assert len(locmem.outbox) == AUDIENCE - ROOM
    assert Message.objects.filter(campaign=big_campaign).count() == AUDIENCE


def test_people_added_to_a_list_after_the_launch_do_not_get_the_running_campaign(
    bob, big_campaign, make_recipients, django_capture_on_commit_callbacks
):
    """Rows are made as it sends, but the audience is the lists as they were when it started."""
    from recipients.models import RecipientList
    from recipients.services import recipient_list_add_members

    everyone = RecipientList.objects.get(name="everyone")
    already = make_recipients(2)  # exist before the launch (low ids) but join the list after it
    queued = _launch_without_sending(big_campaign, bob, django_capture_on_commit_callbacks)
    late = make_recipients(2)  # new people (ids past the cursor) joining after the launch
    recipient_list_add_members(recipient_list=everyone, recipient_ids=[p.pk for p in [*already, *late]])

    with django_capture_on_commit_callbacks(execute=True):
        for send in queued:
            send()  # the first batches go out, and each dispatch after them makes the next rows
        run_sweep()
        run_sweep()
    latecomers = {p.phone for p in [*already, *late]}
    sent_to = [m.to for m in locmem.outbox]
    assert not latecomers & set(sent_to)
    assert len(sent_to) == AUDIENCE == len(set(sent_to))
