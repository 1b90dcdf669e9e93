"""Engine controls under real workers (issue 17): failover before auto-pause, auto-resume,
validity at send time, resume re-dispatch, the start-up burst."""

from __future__ import annotations

import contextlib
import itertools
from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns.models import Campaign, CampaignEvent
from campaigns.services import campaign_launch, campaign_pause, campaign_resume
from devtools.fake_provider import flowroute as fake_flowroute
from messaging.models import Message
from tests.campaigns.test_engine_workers import _all_final, engine_setup  # noqa: F401  (fixture)
from tests.conftest import wait_for

pytestmark = pytest.mark.worker


@pytest.fixture
def flowroute_fake():
    """A second fake provider, answering as Flowroute (one emulator per provider, as in production)."""
    from devtools.fake_provider import FakeProvider

    server = FakeProvider()
    server.start()
    server.configure(callback_delay_s=0.05)
    yield server
    with contextlib.suppress(Exception):
        server.drain(5)
    server.stop()


def _events(campaign) -> list[str]:
    return list(CampaignEvent.objects.filter(campaign=campaign).order_by("id").values_list("kind", flat=True))


def _completed(campaign) -> bool:
    return Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.COMPLETED


def test_a_mixed_pool_fails_over_instead_of_auto_pausing_and_sends_everyone_once(
    engine_setup,  # noqa: F811
    flowroute_fake,
    settings,
    bob,
    make_sender,
    make_recipients,
    make_campaign,
    celery_workers,
):
    plivo = engine_setup
    plivo.configure(rate_5xx=1.0, codes_5xx=[503])  # Plivo answers 503 to everything
    flowroute = fake_flowroute.product_settings(flowroute_fake.config, flowroute_fake.url)
    settings.FLOWROUTE_WEBHOOK_SECRET = flowroute["FLOWROUTE_WEBHOOK_SECRET"]  # the live server checks callbacks
    celery_workers.env.update(
        SMS_BACKEND="providers.backends.live.SMSBackend",
        SMS_MAX_ATTEMPTS="10",
        # Auto-pause may decide before failover has seen enough (as in issue 17: 6.5 s vs 6.9 s),
        # and at a rate that counting the failing provider's half of the sends would surely reach.
        SMS_AUTO_PAUSE_FAILURE_RATE="0.4",
        SMS_AUTO_PAUSE_MIN_SENDS="20",
        SMS_FAILOVER_MIN_SENDS="60",
        **flowroute,
    )
    make_recipients(100, recipient_list="everyone")
    pool = [
        make_sender(bob, number="+14155550100", provider="plivo"),
        make_sender(bob, number="+14155550101", provider="flowroute"),
    ]
    campaign = make_campaign(bob, lists=["everyone"], senders=pool)
    celery_workers.start(concurrency=2, beat=True)

    campaign_launch(campaign=campaign, user=bob)
    wait_for(lambda: _completed(campaign), timeout=120, interval=0.5, message=f"completed\n{celery_workers.logs()}")

    assert "auto_pause" not in _events(campaign)
    assert "failover" in _events(campaign)
    assert plivo.stats()["accepted"] == 0
    sent_to = [m["dst"] for m in flowroute_fake.messages(fields=["dst"])]
    assert len(sent_to) == 100 and len(set(sent_to)) == 100  # each recipient exactly one message
    assert flowroute_fake.duplicates() == []
    # A campaign completes once every row is accepted; the delivery reports are applied by the status
    # drain, which keeps a report that came before its send was recorded for a later pass.
    wait_for(
        lambda: (
            set(Message.objects.filter(campaign=campaign).values_list("status", flat=True)) <= {"delivered", "sent"}
        ),
        timeout=120,
        interval=0.5,
        message=f"every delivery report applied\n{celery_workers.logs()}",
    )


def test_a_campaign_the_system_paused_resumes_on_its_own_once_the_provider_heals(
    engine_setup,  # noqa: F811
    bob,
    make_sender,
    make_recipients,
    make_campaign,
    celery_workers,
):
    fake = engine_setup
    fake.configure(rate_5xx=1.0, codes_5xx=[503])
    celery_workers.env.update(SMS_MAX_ATTEMPTS="10", SMS_AUTO_PAUSE_MIN_SENDS="10", SMS_AUTO_RESUME_PROBE_SECONDS="1")
    make_recipients(40, recipient_list="everyone")
    campaign = make_campaign(bob, lists=["everyone"], senders=[make_sender(bob)])
    celery_workers.start(concurrency=2, beat=True)

    campaign_launch(campaign=campaign, user=bob)
    wait_for(
        lambda: Campaign.objects.get(pk=campaign.pk).auto_paused,
        timeout=120,
        message=f"auto-paused\n{celery_workers.logs()}",
    )
    assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.PAUSED
    fake.configure(rate_5xx=0.0)  # the provider heals

    wait_for(lambda: _completed(campaign), timeout=120, interval=0.5, message=f"completed\n{celery_workers.logs()}")
    assert _events(campaign)[:2] == ["auto_pause", "auto_resume"]
    assert "succeeded" in CampaignEvent.objects.get(campaign=campaign, kind="auto_resume").detail
    assert _all_final(campaign)
    sent_to = [m["dst"] for m in fake.messages(fields=["dst"])]
    assert len(sent_to) == 40 and len(set(sent_to)) == 40
    assert fake.duplicates() == []


def _workers_ready(timeout: float = 60) -> None:
    from smsportal.celery import app

    wait_for(lambda: app.control.ping(timeout=0.5), timeout=timeout, message="a worker answers")


def test_nothing_is_sent_after_valid_until_even_from_a_batch_claimed_before(
    engine_setup,  # noqa: F811
    bob,
    make_sender,
    make_recipients,
    make_campaign,
    celery_workers,
):
    fake = engine_setup
    make_recipients(50, recipient_list="everyone")
    celery_workers.start(concurrency=2, beat=True)
    _workers_ready()
    # 5/s: the 25-row batches are claimed at launch, and their sends run past valid_until.
    campaign = make_campaign(
        bob,
        lists=["everyone"],
        senders=[make_sender(bob, max_mps=5)],
        valid_until=timezone.now() + timedelta(seconds=3),
    )
    campaign_launch(campaign=campaign, user=bob)

    wait_for(lambda: _all_final(campaign), timeout=120, interval=0.5, message=f"all final\n{celery_workers.logs()}")
    deadline = Campaign.objects.get(pk=campaign.pk).valid_until.timestamp()
    received = [m["received_at"] for m in fake.messages(fields=["received_at"])]
    assert received, "some messages went out before valid_until"
    # A request that started just before the deadline may land a moment later (transit, longer on a
    # busy machine), not a send; without the check before each request, sends would go on for
    # seconds (the rows left at 5/s).
    assert max(received) < deadline + 2
    statuses = Message.objects.filter(campaign=campaign).values_list("status", flat=True)
    expired = sum(1 for s in statuses if s == "expired")
    assert expired == 50 - len(received) > 0
    event = CampaignEvent.objects.get(campaign=campaign, kind="expiry")
    assert f"{expired} messages expired" in event.detail


def test_resume_re_dispatches_the_rows_of_batches_that_found_the_campaign_paused(
    engine_setup,  # noqa: F811
    bob,
    make_sender,
    make_recipients,
    make_campaign,
    celery_workers,
):
    fake = engine_setup
    # No beat: nothing re-queues lost rows, so only resume's own dispatch can send the rest.
    celery_workers.env.update(SMS_REDISPATCH_SECONDS="600")
    make_recipients(100, recipient_list="everyone")
    campaign = make_campaign(bob, lists=["everyone"], senders=[make_sender(bob, max_mps=20)])
    celery_workers.start(concurrency=2)

    campaign_launch(campaign=campaign, user=bob)  # all four 25-row batches are queued at launch
    wait_for(lambda: fake.stats()["accepted"] >= 10, timeout=120, message=f"10 accepted\n{celery_workers.logs()}")
    campaign_pause(campaign=campaign, user=bob)
    # The batches still queued run while paused and claim nothing; their rows must stay ready.
    wait_for(
        lambda: (
            not Message.objects.filter(campaign=campaign, status__in=["claimed", "sending"]).exists()
            and not Message.objects.filter(campaign=campaign, status="pending", enqueued_at__isnull=False).exists()
        ),
        timeout=120,
        message=f"every unsent row pending and undispatched\n{celery_workers.logs()}",
    )
    paused_at = fake.stats()["accepted"]
    assert paused_at < 100

    campaign_resume(campaign=Campaign.objects.get(pk=campaign.pk), user=bob)
    wait_for(lambda: fake.stats()["accepted"] == 100, timeout=120, message=f"all 100 accepted\n{celery_workers.logs()}")
    assert fake.duplicates() == []
    assert len({m["dst"] for m in fake.messages(fields=["dst"])}) == 100


def test_no_one_second_window_from_the_start_exceeds_the_numbers_rate_across_workers(
    engine_setup,  # noqa: F811
    bob,
    make_sender,
    make_recipients,
    make_campaign,
    celery_workers,
):
    fake = engine_setup
    make_recipients(30, recipient_list="everyone")
    campaign = make_campaign(bob, lists=["everyone"], senders=[make_sender(bob, max_mps=10)])
    celery_workers.start(concurrency=1, name="a")
    celery_workers.start(concurrency=1, name="b")
    _workers_ready()

    campaign_launch(campaign=campaign, user=bob)
    wait_for(lambda: fake.stats()["accepted"] == 30, timeout=120, message=f"30 accepted\n{celery_workers.logs()}")
    times = sorted(m["received_at"] for m in fake.messages(fields=["received_at"]))
    # Counts, not speed: the busiest 1-second window, the first one included. A bucket that starts
    # full let through twice the rate in the first second (issue 17: 38 at max_mps 20; 20 here).
    # Sends leave 0.1 s apart; the fake's receive times, taken in this busy test process, can bunch
    # a few of them together (and the fence post counts one more), hence the margin of 3.
    busiest = max(sum(1 for t in times if start <= t < start + 1.0) for start in times)
    gaps = [round(b - a, 3) for a, b in itertools.pairwise(times)]
    assert busiest <= 10 + 3, f"{busiest} sends in one second at max_mps 10: {gaps}"
    first_second = sum(1 for t in times if t < times[0] + 1.0)
    assert first_second <= 10 + 3
    assert fake.duplicates() == []
