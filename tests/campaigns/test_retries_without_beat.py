"""Retries that fall due after a campaign's last batch go out without beat's sweep (issue 21)."""

from __future__ import annotations

import pytest
from django.utils import timezone

from campaigns.services import campaign_launch
from messaging.models import Message
from tests.conftest import plivo_env, wait_for

pytestmark = pytest.mark.worker
OPEN = ["pending", "claimed", "sending", "unknown"]


def test_every_retry_is_sent_with_no_beat_running(
    settings, fake_provider, celery_workers, bob, make_sender, make_recipients, make_campaign
):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    celery_workers.env.update(
        **plivo_env(fake_provider),
        SMS_BATCH_SIZE="20",
        SMS_RETRY_BASE_SECONDS="1",
        SMS_MAX_ATTEMPTS="5",
    )
    settings.SMS_BATCH_SIZE = 20
    # A third of the requests fail with a 503: every batch leaves retries behind, the last ones
    # falling due when no batch is left to dispatch them.
    fake_provider.configure(rate_5xx=0.3, seed=21, callbacks=False)
    people = make_recipients(60, recipient_list="everyone")
    campaign = make_campaign(bob, lists=["everyone"], senders=[make_sender(bob)])
    celery_workers.start(concurrency=1, beat=False, name="only")

    campaign_launch(campaign=campaign, user=bob)

    rows = Message.objects.filter(campaign=campaign)
    try:
        wait_for(
            lambda: rows.count() == len(people) and not rows.filter(status__in=OPEN).exists(),
            timeout=120,
            interval=0.5,
            message="every message final",
        )
    except AssertionError as exc:
        still_open = list(rows.filter(status__in=OPEN).values_list("id", "status", "attempts", "due_at", "enqueued_at"))
        raise AssertionError(f"{exc}; now {timezone.now()}, open: {still_open}\n{celery_workers.logs()}") from None
    assert fake_provider.stats()["fault_5xx"] > 0
    assert fake_provider.duplicates() == []
    queued = rows.filter(status="queued")
    # Sent after a retry: each retry was dispatched by the batches and the delayed dispatch alone.
    assert queued.filter(attempts__gt=1).exists()
    sent_to = sorted(m["dst"] for m in fake_provider.messages(fields=["dst"]))
    assert sent_to == sorted(queued.values_list("to", flat=True))
    # The rest failed only after their last attempt (5 in a row: rare), none was left waiting.
    assert set(rows.exclude(status="queued").values_list("attempts", flat=True)) <= {5}
