"""The deployed path with real Celery workers: senders on the default queue, webhooks on "events"."""

from __future__ import annotations

from standardwebhooks.webhooks import Webhook

from campaigns.services import campaign_launch
from events.services import endpoint_create
from tests.conftest import wait_for


def test_a_campaign_s_events_reach_the_receiver_through_the_events_worker(
    settings, alice, bob, make_sender, make_recipients, make_campaign, celery_workers, receiver
):
    endpoint = endpoint_create(actor=alice, url=receiver.url)
    people = make_recipients(5, recipient_list="customers")
    campaign = make_campaign(bob, lists=["customers"], senders=[make_sender(bob)])
    celery_workers.env["SMS_BACKEND"] = "providers.backends.sandbox.SMSBackend"
    celery_workers.start(concurrency=1, beat=True, name="sender")
    celery_workers.start(concurrency=1, name="events", queues="events")
    settings.CELERY_TASK_ALWAYS_EAGER = False  # publish to the real broker
    campaign_launch(campaign=campaign, user=bob)

    def all_arrived():
        types = [e["type"] for e in receiver.accepted()]
        return types.count("message.delivered") == 5 and "campaign.completed" in types

    wait_for(all_arrived, timeout=120, message=f"11 events; worker logs:\n{celery_workers.logs()}")
    events = receiver.accepted()
    for person in people:
        mine = [
            e["type"] for e in events if e["type"].startswith("message.") and e["data"]["recipient_id"] == person.pk
        ]
        assert mine == ["message.sent", "message.delivered"]
    completed = [e for e in events if e["type"] == "campaign.completed"]
    assert [e["data"]["id"] for e in completed] == [campaign.pk]  # (it may come before the last delivered)
    verifier = Webhook(endpoint.secret)
    for request in receiver.received:
        verifier.verify(request["body"], {k.lower(): v for k, v in request["headers"].items()})
