"""Auto-pause: a provider that really fails pauses the campaign, a burst of late outcomes from a
healthy one does not, and a slow campaign can still pause (real PostgreSQL and Redis)."""

import threading
import time

import pytest
from django.db import connection

from campaigns.models import Campaign, CampaignEvent
from campaigns.services import campaign_launch
from messaging import failover, hooks
from messaging.hooks import CampaignOutcomes
from providers.backends import locmem
from providers.errors import TransientError


@pytest.fixture
def clock(monkeypatch):
    """The wall clock (failover's buckets and the campaign's window read it), moved by hand."""
    now = [time.time()]
    monkeypatch.setattr(time, "time", lambda: now[0])
    return now


def _sending(campaign) -> Campaign:
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.SENDING)
    return campaign


def _record(campaign, ok: int, bad: int) -> None:
    """What the engine does with each group of outcomes it records (messaging.engine._record)."""
    failover.record(provider="plivo", ok=ok, failed=bad, campaign_ids=[campaign.pk])
    hooks.campaigns().after_outcomes(
        [CampaignOutcomes(campaign_id=campaign.pk, accepted=ok, failed=bad, by_provider={"plivo": (ok, bad)})]
    )


def _paused(campaign) -> bool:
    return Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.PAUSED


def _large_campaign_then_its_tail(campaign, clock) -> None:
    """2,000 sends in 2 s, then 40 tiny retry batches over 4 s (bench fanout --faults)."""
    for _ in range(4):
        _record(campaign, 500, 0)
        clock[0] += 0.5
    for _ in range(40):
        _record(campaign, 2, 0)
        clock[0] += 0.1


def test_a_burst_of_late_failures_from_a_healthy_provider_does_not_pause(bob, make_sender, make_campaign, clock):
    campaign = _sending(make_campaign(bob, senders=[make_sender(bob)]))
    _large_campaign_then_its_tail(campaign, clock)
    # The requests that hung until their read timeout, sent among the successes above and
    # recorded at once by the straggler recorder: most of the campaign's latest *recorded*
    # outcomes, but the provider answered ~95% of what it was sent.
    _record(campaign, 0, 100)
    assert failover.health("plivo") == failover.HEALTHY
    assert not _paused(campaign)
    assert not CampaignEvent.objects.filter(campaign=campaign, kind="auto_pause").exists()


def test_a_provider_that_starts_failing_every_send_still_pauses(bob, make_sender, make_campaign, clock):
    campaign = _sending(make_campaign(bob, senders=[make_sender(bob)]))
    _large_campaign_then_its_tail(campaign, clock)
    for _ in range(60):  # 50 failed sends a second, for up to a minute
        _record(campaign, 0, 50)
        clock[0] += 1
        if _paused(campaign):
            break
    assert _paused(campaign)
    assert "of recent sends failed (plivo)" in Campaign.objects.get(pk=campaign.pk).pause_reason
    assert CampaignEvent.objects.filter(campaign=campaign, kind="auto_pause").count() == 1


def test_a_slow_campaign_whose_sends_all_fail_pauses(bob, make_sender, make_campaign, clock, settings):
    campaign = _sending(make_campaign(bob, senders=[make_sender(bob)]))
    sent = 0
    while not _paused(campaign) and sent < 500:
        _record(campaign, 0, 1)  # one send every 10 s, each recorded on its own
        clock[0] += 10
        sent += 1
    assert failover.health("plivo") == failover.UNKNOWN  # too few sends a minute for failover to judge
    assert _paused(campaign)
    assert sent <= 2 * settings.SMS_AUTO_PAUSE_MIN_SENDS


def test_a_campaign_sent_one_row_per_batch_whose_sends_all_fail_pauses(
    settings, bob, make_sender, make_recipients, make_campaign, django_capture_on_commit_callbacks
):
    # Every recorded group holds one send; the default minimum of 50 sends must still be reachable.
    settings.SMS_BATCH_SIZE = 1
    people = make_recipients(90, recipient_list="l")
    for person in people:
        locmem.fail_numbers[person.phone] = TransientError("upstream 503", http_status=503)
    campaign = make_campaign(bob, lists=["l"], senders=[make_sender(bob)])
    with django_capture_on_commit_callbacks(execute=True):
        campaign_launch(campaign=campaign, user=bob)
    assert _paused(campaign)
    assert "of recent sends failed (plivo)" in Campaign.objects.get(pk=campaign.pk).pause_reason
    assert CampaignEvent.objects.filter(campaign=campaign, kind="auto_pause").count() == 1


@pytest.mark.django_db(transaction=True)
def test_outcomes_recorded_by_workers_at_once_all_count(bob, make_sender, make_campaign, clock, settings):
    """Workers record a campaign's outcomes at the same moment: none may overwrite another's counts.
    Exactly SMS_AUTO_PAUSE_MIN_SENDS failed sends, all in one instant, pause the campaign, once;
    the cache's read-modify-write lost some and the campaign went on sending."""
    settings.SMS_AUTO_PAUSE_MIN_SENDS = 200
    campaign = _sending(make_campaign(bob, senders=[make_sender(bob)]))
    workers, each = 8, 25
    start = threading.Barrier(workers)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            start.wait(10)
            for _ in range(each):
                hooks.campaigns().after_outcomes(
                    [CampaignOutcomes(campaign_id=campaign.pk, accepted=0, failed=1, by_provider={"plivo": (0, 1)})]
                )
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)

    assert not errors
    assert workers * each == settings.SMS_AUTO_PAUSE_MIN_SENDS
    assert _paused(campaign)
    assert "100% of recent sends failed (plivo)" in Campaign.objects.get(pk=campaign.pk).pause_reason
    assert CampaignEvent.objects.filter(campaign=campaign, kind="auto_pause").count() == 1


def test_a_person_resuming_is_judged_on_the_sends_after_the_resume(
    bob, make_sender, make_campaign, clock, django_capture_on_commit_callbacks
):
    from campaigns.services import campaign_pause, campaign_resume

    campaign = _sending(make_campaign(bob, senders=[make_sender(bob)]))
    _record(campaign, 45, 45)  # half failed: not over the rate, no pause
    campaign_pause(campaign=Campaign.objects.get(pk=campaign.pk), user=bob, reason="checking the provider")
    clock[0] += 3600  # an hour later: the time window has faded, the per-send one does not
    with django_capture_on_commit_callbacks(execute=True):
        campaign_resume(campaign=Campaign.objects.get(pk=campaign.pk), user=bob)
    _record(campaign, 2, 3)  # with the sends before the pause this tips the window over 50%

    assert not _paused(campaign)  # five sends since the resume: too few to judge
    assert not CampaignEvent.objects.filter(campaign=campaign, kind="auto_pause").exists()


def test_a_person_pausing_just_after_an_auto_pause_keeps_it_paused_until_they_resume(
    bob, make_sender, make_campaign, clock
):
    from campaigns.services import campaign_auto_pause, campaign_pause

    campaign = _sending(make_campaign(bob, senders=[make_sender(bob)]))
    assert campaign_auto_pause(campaign_id=campaign.pk, reason="100% of recent sends failed (plivo)")
    # The person clicked Pause while it was sending; the system's pause committed first.
    paused = campaign_pause(campaign=Campaign.objects.get(pk=campaign.pk), user=bob, reason="stop everything")
    assert (paused.status, paused.auto_paused, paused.pause_reason) == (
        Campaign.Status.PAUSED,
        False,  # beat's probe resumes only what the system paused
        "stop everything",
    )
