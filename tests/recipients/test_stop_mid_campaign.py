"""STOP takes effect at once, even for a campaign that real workers are sending right now."""

from __future__ import annotations

import pytest

from campaigns.models import Campaign
from campaigns.services import campaign_launch
from messaging.models import Message
from recipients.models import InboundMessage, Recipient
from tests.conftest import plivo_env, wait_for
from tests.providers.conftest import PLIVO_SECRET, signed_plivo_post

pytestmark = pytest.mark.worker
FINAL = {"delivered", "undelivered", "failed", "skipped", "cancelled", "expired"}
OUR_NUMBER = "+14155550100"


def test_a_stop_mid_campaign_stops_sends_to_that_number_at_once(
    settings, live_server, fake_provider, celery_workers, client, bob, make_sender, make_recipients, make_campaign
):
    cfg = fake_provider.config
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.PUBLIC_BASE_URL = live_server.url
    settings.PLIVO_AUTH_TOKEN = cfg.plivo_auth_token
    settings.PLIVO_WEBHOOK_SECRET = PLIVO_SECRET
    celery_workers.env.update(
        **plivo_env(fake_provider),
        PLIVO_WEBHOOK_SECRET=PLIVO_SECRET,
        PUBLIC_BASE_URL=live_server.url,
    )
    fake_provider.configure(callback_delay_s=0.05)
    people = make_recipients(30, recipient_list="everyone")
    # 5 messages a second: the campaign takes ~6 s, and the engine re-checks consent every chunk (~1 s).
    campaign = make_campaign(bob, lists=["everyone"], senders=[make_sender(bob, number=OUR_NUMBER, max_mps=5)])
    celery_workers.start(concurrency=2, beat=True)

    campaign_launch(campaign=campaign, user=bob)
    wait_for(lambda: fake_provider.stats()["accepted"] >= 5, timeout=60, message=f"5 sent\n{celery_workers.logs()}")
    sent_so_far = {m["dst"].lstrip("+") for m in fake_provider.messages(fields=["dst"])}
    stoppers = [p for p in reversed(people) if p.phone.lstrip("+") not in sent_so_far][:3]
    assert len(stoppers) == 3
    for i, person in enumerate(stoppers):
        params = {
            "From": person.phone.lstrip("+"),
            "To": OUR_NUMBER.lstrip("+"),
            "Text": "STOP",
            "MessageUUID": f"s{i}",
        }
        response = signed_plivo_post(
            client, f"/webhooks/plivo/{PLIVO_SECRET}/inbound/", params, token=cfg.plivo_auth_token, base=live_server.url
        )
        assert response.status_code == 200, response.content

    def finished():
        statuses = Message.objects.filter(campaign=campaign).values_list("status", flat=True)
        return all(s in FINAL for s in statuses)

    wait_for(finished, timeout=90, interval=0.5, message=f"campaign finished\n{celery_workers.logs()}")

    received = fake_provider.messages(fields=["dst", "text", "received_at"])
    for person in stoppers:
        person = Recipient.objects.get(pk=person.pk)
        assert person.consent_status == "opted_out"
        to_them = [m for m in received if m["dst"].lstrip("+") == person.phone.lstrip("+")]
        # The only thing they get after STOP is the one confirmation reply.
        assert [m["text"] for m in to_them] == [settings.SMS_STOP_REPLY]
        assert Message.objects.get(campaign=campaign, recipient=person).status == "skipped"
    assert InboundMessage.objects.filter(kind="opt_out").count() == 3
    others = Message.objects.filter(campaign=campaign).exclude(recipient__in=stoppers)
    assert others.count() == 27 and not others.filter(status="skipped").exists()
    wait_for(
        lambda: Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.COMPLETED, timeout=30, message="done"
    )
