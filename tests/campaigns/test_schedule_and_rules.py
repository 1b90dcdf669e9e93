"""Scheduling, quiet hours, validity, sticky senders, failover and auto-pause (eager, real PostgreSQL)."""

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.utils import timezone

from campaigns.models import Campaign, CampaignEvent
from campaigns.services import campaign_launch
from campaigns.tasks import run_sweep
from messaging import failover
from messaging.models import Message
from messaging.scheduling import next_allowed
from providers.backends import locmem
from providers.errors import AuthenticationFailed, TransientError


def _launch(campaign, user, capture):
    with capture(execute=True):
        campaign_launch(campaign=campaign, user=user)
    campaign.refresh_from_db()
    return campaign


def test_a_campaign_scheduled_for_later_waits_for_beat(
    bob, make_sender, make_recipients, make_campaign, django_capture_on_commit_callbacks
):
    make_recipients(3, recipient_list="l")
    send_at = timezone.now() + timedelta(hours=2)
    campaign = _launch(
        make_campaign(bob, lists=["l"], senders=[make_sender(bob)], send_at=send_at),
        bob,
        django_capture_on_commit_callbacks,
    )
    assert campaign.status == Campaign.Status.SCHEDULED
    run_sweep(now=timezone.now())
    assert Message.objects.count() == 0 and locmem.outbox == []
    with django_capture_on_commit_callbacks(execute=True):
        run_sweep(now=send_at + timedelta(seconds=1))
    campaign.refresh_from_db()
    assert campaign.status in {Campaign.Status.SENDING, Campaign.Status.COMPLETED}
    assert Message.objects.filter(campaign=campaign).count() == 3


def test_quiet_hours_hold_messages_until_the_window_opens_in_the_recipients_zone():
    # 03:00 UTC is 19:00 the day before in Los Angeles (PST, UTC-8): inside 08:00-21:00.
    start, end = time(8), time(21)
    assert next_allowed("+14155550123", datetime(2026, 1, 15, 3, 0, tzinfo=UTC), start, end) is None
    # 06:00 UTC is 22:00 in Los Angeles: held until 08:00 local, which is 16:00 UTC.
    opens = next_allowed("+14155550123", datetime(2026, 1, 15, 6, 0, tzinfo=UTC), start, end)
    assert opens == datetime(2026, 1, 15, 8, 0, tzinfo=ZoneInfo("America/Los_Angeles"))
    # A London number at 06:00 UTC (06:00 local) waits two hours.
    assert next_allowed("+447700900123", datetime(2026, 1, 15, 6, 0, tzinfo=UTC), start, end) == datetime(
        2026, 1, 15, 8, 0, tzinfo=ZoneInfo("Europe/London")
    )


HAWAII, NEW_YORK = "+18085550123", "+12125550123"
HONOLULU = ZoneInfo("Pacific/Honolulu")


def test_the_send_window_is_the_recipients_own_hawaii_and_new_york_differ_at_the_same_instant():
    start, end = time(8), time(21)
    # 19:00 UTC in winter: 09:00 in Honolulu (HST, UTC-10), 14:00 in New York (EST, UTC-5): both allowed.
    at = datetime(2026, 1, 15, 19, 0, tzinfo=UTC)
    assert next_allowed(HAWAII, at, start, end) is None
    assert next_allowed(NEW_YORK, at, start, end) is None
    # 13:00 UTC: 03:00 in Honolulu, held until 08:00 HST = 18:00 UTC; 08:00 in New York, allowed.
    at = datetime(2026, 1, 15, 13, 0, tzinfo=UTC)
    assert next_allowed(HAWAII, at, start, end) == datetime(2026, 1, 15, 8, 0, tzinfo=HONOLULU)
    assert next_allowed(HAWAII, at, start, end) == datetime(2026, 1, 15, 18, 0, tzinfo=UTC)
    assert next_allowed(NEW_YORK, at, start, end) is None
    # 02:30 UTC: 16:30 in Honolulu, allowed; 21:30 in New York, held until 08:00 EST = 13:00 UTC.
    at = datetime(2026, 1, 16, 2, 30, tzinfo=UTC)
    assert next_allowed(HAWAII, at, start, end) is None
    assert next_allowed(NEW_YORK, at, start, end) == datetime(2026, 1, 16, 13, 0, tzinfo=UTC)
    # Summer: New York is on EDT (UTC-4), Hawaii has no DST. 12:00 UTC is 08:00 in New York, 02:00 in Honolulu.
    at = datetime(2026, 7, 15, 12, 0, tzinfo=UTC)
    assert next_allowed(NEW_YORK, at, start, end) is None
    assert next_allowed(HAWAII, at, start, end) == datetime(2026, 7, 15, 18, 0, tzinfo=UTC)


def test_quiet_hours_defer_sends(bob, make_sender, make_recipients, make_campaign, django_capture_on_commit_callbacks):
    make_recipients(2, recipient_list="l")
    now_la = timezone.now().astimezone(ZoneInfo("America/Los_Angeles"))
    # A one-hour window that starts two hours from now, local time.
    start = (now_la + timedelta(hours=2)).time().replace(minute=0, second=0, microsecond=0)
    end = (now_la + timedelta(hours=3)).time().replace(minute=0, second=0, microsecond=0)
    campaign = make_campaign(bob, lists=["l"], senders=[make_sender(bob)], send_window_start=start, send_window_end=end)
    _launch(campaign, bob, django_capture_on_commit_callbacks)
    assert locmem.outbox == []
    rows = list(Message.objects.filter(campaign=campaign))
    assert {m.status for m in rows} == {"pending"}
    assert all(m.due_at > timezone.now() + timedelta(minutes=50) for m in rows)


def test_messages_expire_after_the_validity_period(
    bob, make_sender, make_recipients, make_campaign, django_capture_on_commit_callbacks
):
    make_recipients(2, recipient_list="l")
    campaign = make_campaign(
        bob, lists=["l"], senders=[make_sender(bob)], valid_until=timezone.now() + timedelta(hours=1)
    )
    start = time(0, 0)
    campaign.send_window_start, campaign.send_window_end = start, time(0, 1)  # almost never open: held
    campaign.save()
    _launch(campaign, bob, django_capture_on_commit_callbacks)
    run_sweep(now=timezone.now() + timedelta(hours=2))
    assert set(Message.objects.filter(campaign=campaign).values_list("status", flat=True)) == {"expired"}
    assert locmem.outbox == []


def test_a_pool_keeps_each_recipient_on_the_same_number(
    bob, make_sender, make_recipients, make_campaign, django_capture_on_commit_callbacks
):
    make_recipients(30, recipient_list="l")
    pool = [make_sender(bob, number=f"+1415555010{i}") for i in range(3)]
    first = _launch(make_campaign(bob, lists=["l"], senders=pool, name="one"), bob, django_capture_on_commit_callbacks)
    second = _launch(make_campaign(bob, lists=["l"], senders=pool, name="two"), bob, django_capture_on_commit_callbacks)
    one = dict(Message.objects.filter(campaign=first).values_list("recipient_id", "sender"))
    two = dict(Message.objects.filter(campaign=second).values_list("recipient_id", "sender"))
    assert one == two
    assert len(set(one.values())) == 3  # the pool is used, not one number


def test_a_failing_provider_moves_a_mixed_pool_to_the_healthy_one(
    bob, make_sender, make_recipients, make_campaign, django_capture_on_commit_callbacks, monkeypatch
):
    make_recipients(40, recipient_list="l")
    pool = [
        make_sender(bob, number="+14155550100", provider="plivo"),
        make_sender(bob, number="+14155550200", provider="flowroute"),
    ]
    campaign = make_campaign(bob, lists=["l"], senders=pool)
    failover.record(provider="plivo", ok=0, failed=50, campaign_ids=[campaign.pk])
    assert not failover.is_healthy("plivo") and failover.is_healthy("flowroute")
    assert CampaignEvent.objects.filter(campaign=campaign, kind="failover").exists()
    monkeypatch.setattr(failover, "PROBE_SHARE", 0)
    _launch(campaign, bob, django_capture_on_commit_callbacks)
    assert set(Message.objects.filter(campaign=campaign).values_list("provider", flat=True)) == {"flowroute"}


def test_authentication_failure_pauses_instead_of_burning_the_list(
    bob, make_sender, make_recipients, make_campaign, django_capture_on_commit_callbacks
):
    people = make_recipients(5, recipient_list="l")
    for person in people:
        locmem.fail_numbers[person.phone] = AuthenticationFailed("bad credentials", http_status=401)
    campaign = _launch(
        make_campaign(bob, lists=["l"], senders=[make_sender(bob)]), bob, django_capture_on_commit_callbacks
    )
    assert campaign.status == Campaign.Status.PAUSED
    assert "credentials" in campaign.pause_reason
    assert set(Message.objects.filter(campaign=campaign).values_list("status", flat=True)) == {"pending"}


def test_a_high_failure_rate_auto_pauses_with_the_reason_shown(
    settings, bob, make_sender, make_recipients, make_campaign, django_capture_on_commit_callbacks
):
    settings.SMS_AUTO_PAUSE_MIN_SENDS = 10
    settings.SMS_BATCH_SIZE = 20
    people = make_recipients(60, recipient_list="l")
    for person in people:
        locmem.fail_numbers[person.phone] = TransientError("upstream 503", http_status=503)
    campaign = _launch(
        make_campaign(bob, lists=["l"], senders=[make_sender(bob)]), bob, django_capture_on_commit_callbacks
    )
    assert campaign.status == Campaign.Status.PAUSED
    assert "failed" in campaign.pause_reason
    assert CampaignEvent.objects.filter(campaign=campaign, kind="auto_pause").exists()


def test_a_single_send_refused_for_credentials_fails_instead_of_looping(bob, make_sender):
    from messaging.engine import send_batch

    sender = make_sender(bob)
    message = Message.objects.create(
        kind=Message.Kind.SINGLE, to="+14155552671", sender=sender.number, provider="plivo", body="hi"
    )
    locmem.fail_numbers[message.to] = AuthenticationFailed("bad credentials", http_status=401)
    send_batch(message_ids=[message.pk])
    message.refresh_from_db()
    assert message.status == "failed" and message.error_permanent is True


def test_single_sends_are_held_to_their_numbers_rate(bob, make_sender):
    import time as clock

    from messaging.engine import send_batch

    sender = make_sender(bob, max_mps=5)
    ids = [
        Message.objects.create(
            kind=Message.Kind.SINGLE, to=f"+1415555{2700 + i}", sender=sender.number, provider="plivo", body="hi"
        ).pk
        for i in range(10)
    ]
    started = clock.monotonic()
    send_batch(message_ids=ids)
    elapsed = clock.monotonic() - started
    assert len(locmem.outbox) == 10
    # Ten sends spaced 0.2 s apart: about 1.8 s. Unlimited would take milliseconds.
    assert elapsed >= 0.8


def test_retry_failed_resends_only_transient_failures_on_the_same_row(
    settings, bob, make_sender, make_recipients, make_campaign, django_capture_on_commit_callbacks
):
    from campaigns.services import campaign_retry_failed
    from providers.errors import InvalidRecipient

    settings.SMS_MAX_ATTEMPTS = 1
    settings.SMS_AUTO_PAUSE_MIN_SENDS = 1000
    flaky, invalid, fine = make_recipients(3, recipient_list="l")
    locmem.fail_numbers[flaky.phone] = TransientError("upstream 503", http_status=503)
    locmem.fail_numbers[invalid.phone] = InvalidRecipient("invalid destination", http_status=400)
    campaign = _launch(
        make_campaign(bob, lists=["l"], senders=[make_sender(bob)]), bob, django_capture_on_commit_callbacks
    )
    run_sweep()
    by_phone = {m.to: m for m in Message.objects.filter(campaign=campaign)}
    assert by_phone[flaky.phone].status == "failed" and by_phone[flaky.phone].error_permanent is False
    assert by_phone[invalid.phone].status == "failed" and by_phone[invalid.phone].error_permanent is True
    assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.COMPLETED

    del locmem.fail_numbers[flaky.phone]
    with django_capture_on_commit_callbacks(execute=True):
        assert campaign_retry_failed(campaign=Campaign.objects.get(pk=campaign.pk), user=bob) == 1
    run_sweep()
    retried = Message.objects.get(pk=by_phone[flaky.phone].pk)
    assert retried.status == "queued" and retried.attempts == 2
    assert Message.objects.get(pk=by_phone[invalid.phone].pk).status == "failed"
    assert [m.to for m in locmem.outbox].count(flaky.phone) == 1
    assert [m.to for m in locmem.outbox].count(fine.phone) == 1
