"""Pacing with real workers: a batch slower than its rows' lease still sends each row once."""

from __future__ import annotations

import pytest

from campaigns.services import campaign_launch
from messaging.models import Message
from tests.campaigns.test_engine_workers import _all_final, engine_setup  # noqa: F401  (fixture)
from tests.conftest import wait_for

pytestmark = pytest.mark.worker


def test_a_batch_slower_than_its_lease_sends_each_row_once(
    engine_setup,  # noqa: F811
    bob,
    make_sender,
    make_recipients,
    make_campaign,
    celery_workers,
):
    fake = engine_setup  # 25-row batches, 10 s leases, beat's sweeper running
    make_recipients(25, recipient_list="everyone")
    # One number at 2/s: the batch needs ~14 s, longer than its rows' 10 s lease. The batch renews
    # the lease of the rows it still holds; without that the sweeper puts them back to pending and
    # beat queues them for the other worker process while this batch still holds them. Either way
    # each row must go out once (a row moves to ``sending`` only from ``claimed``).
    campaign = make_campaign(bob, lists=["everyone"], senders=[make_sender(bob, max_mps=2)])
    celery_workers.start(concurrency=2, beat=True)

    campaign_launch(campaign=campaign, user=bob)
    wait_for(lambda: _all_final(campaign), timeout=120, interval=0.5, message=f"all final\n{celery_workers.logs()}")
    assert fake.duplicates() == []
    assert fake.stats()["accepted"] == 25
    assert set(Message.objects.filter(campaign=campaign).values_list("status", flat=True)) <= {"queued", "delivered"}
