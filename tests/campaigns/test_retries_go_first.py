"""A due retry goes out ahead of the batches queued in advance, not after them (issue 21)."""

from __future__ import annotations

import pytest

from campaigns.services import campaign_launch
from messaging.models import Message
from tests.conftest import plivo_env, wait_for

pytestmark = pytest.mark.worker
OPEN = ["pending", "claimed", "sending", "unknown"]
BATCH, AHEAD = 20, 6


def test_a_retry_overtakes_the_batches_queued_ahead_and_is_sent_once(
    settings, fake_provider, celery_workers, bob, make_sender, make_recipients, make_campaign
):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    celery_workers.env.update(
        **plivo_env(fake_provider),
        SMS_BATCH_SIZE=str(BATCH),
        SMS_BATCHES_AHEAD=str(AHEAD),
        SMS_RETRY_BASE_SECONDS="0",  # a failed send is due again at once: only the queue can hold it back
        SMS_MAX_ATTEMPTS="5",
    )
    settings.SMS_BATCH_SIZE, settings.SMS_BATCHES_AHEAD = BATCH, AHEAD
    fake_provider.configure(rate_5xx=0.1, seed=7, latency_ms=20, callbacks=False)
    people = make_recipients(300, recipient_list="everyone")
    campaign = make_campaign(bob, lists=["everyone"], senders=[make_sender(bob)])
    celery_workers.start(concurrency=1, beat=False, name="only")

    campaign_launch(campaign=campaign, user=bob)

    rows = Message.objects.filter(campaign=campaign)
    wait_for(
        lambda: rows.count() == len(people) and not rows.filter(status__in=OPEN).exists(),
        timeout=120,
        interval=0.5,
        message="every message final",
    )
    # Exactly once: one accepted request per recipient, each the row's own.
    assert fake_provider.stats()["fault_5xx"] > 0
    assert fake_provider.duplicates() == []
    queued = rows.filter(status="queued")
    sent_to = sorted(m["dst"] for m in fake_provider.messages(fields=["dst"]))
    assert sent_to == sorted(queued.values_list("to", flat=True))
    assert set(rows.exclude(status="queued").values_list("attempts", flat=True)) <= {5}

    first_try = sorted(queued.filter(attempts=1).values_list("sent_at", flat=True))
    made = sorted(rows.values_list("created_at", flat=True))
    retried = list(queued.filter(attempts__gt=1).values_list("pk", "due_at", "sent_at"))
    assert retried
    # Before the backlog was exhausted: fresh rows were still being sent after a retry went out.
    assert min(sent for _, _, sent in retried) < first_try[-1]
    # Ahead of the batches queued in advance: once due, a retry lets through at most the rest of
    # the batch it failed in and the one its worker already held, never the AHEAD batches queued.
    # Judged while AHEAD batches of rows were still to be made: at the very end, a few retries alone
    # wait behind the campaign's last full batches (messaging.dispatch.FRESH_PRIORITY).
    cutoff = made[-AHEAD * BATCH]
    while_making = [(pk, due, sent) for pk, due, sent in retried if due < cutoff]
    assert while_making
    overtaken = {pk: sum(1 for t in first_try if due < t < sent) for pk, due, sent in while_making}
    assert max(overtaken.values()) <= 2 * BATCH, overtaken
