"""Real Celery worker processes against real PostgreSQL and Redis."""

import pytest

from campaigns.models import Campaign
from campaigns.selectors import campaign_stats
from campaigns.services import campaign_launch
from messaging.models import Message
from tests.conftest import wait_for

pytestmark = pytest.mark.worker


def test_a_worker_process_sends_a_small_campaign_to_delivered(
    settings, bob, make_sender, make_recipients, make_campaign, celery_workers
):
    make_recipients(12, recipient_list="customers")
    make_recipients(3, recipient_list="customers", consent="opted_out")
    campaign = make_campaign(bob, lists=["customers"], senders=[make_sender(bob)])
    celery_workers.env["SMS_BACKEND"] = "providers.backends.sandbox.SMSBackend"
    celery_workers.start(concurrency=2, beat=True)

    settings.CELERY_TASK_ALWAYS_EAGER = False  # publish to the real broker
    campaign_launch(campaign=campaign, user=bob)

    def delivered():
        counts = campaign_stats(campaign=campaign)["counts"]
        return counts["delivered"] == 12

    wait_for(delivered, timeout=90, message=f"12 delivered; worker log:\n{celery_workers.logs()}")
    campaign.refresh_from_db()
    wait_for(
        lambda: Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.COMPLETED,
        timeout=30,
        message="completed",
    )
    assert Message.objects.filter(campaign=campaign).count() == 12
    assert set(Message.objects.filter(campaign=campaign).values_list("status", flat=True)) == {"delivered"}
    assert all(m.provider_message_id.startswith("sandbox-") for m in Message.objects.filter(campaign=campaign))
