"""link.clicked: a followed tracked link becomes a signed event, written in the click's transaction."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from campaigns.models import Campaign, ShortLink
from campaigns.selectors import campaign_stats
from campaigns.shortlinks import links_for
from events.models import OutboxEvent
from events.services import endpoint_create

pytestmark = pytest.mark.usefixtures("fast_retries")
TARGET = "https://shop.example.com/spring?utm_source=sms"


@pytest.fixture
def code(bob, make_campaign, make_recipients):
    campaign = make_campaign(bob, track_links=True, status=Campaign.Status.SENDING)
    (person,) = make_recipients(1)
    (url,) = links_for([(campaign.pk, person.pk, TARGET)]).values()
    return url.rsplit("/", 1)[1]


def test_a_click_is_delivered_as_a_signed_link_clicked_event(
    alice, receiver, client, code, django_capture_on_commit_callbacks
):
    endpoint = endpoint_create(actor=alice, url=receiver.url, event_types=["link.clicked"])
    link = ShortLink.objects.get(code=code)
    for agent in ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0)", "Mozilla/5.0 (X11; Linux x86_64)"):
        with django_capture_on_commit_callbacks(execute=True):
            assert client.get(f"/l/{code}", HTTP_USER_AGENT=agent).status_code == 302

    assert [r["status"] for r in receiver.received] == [200, 200]
    for request in receiver.received:  # an independent Standard Webhooks implementation checks each one
        Webhook(endpoint.secret).verify(request["body"], {k.lower(): v for k, v in request["headers"].items()})
    first, second = receiver.accepted()
    assert first["type"] == second["type"] == "link.clicked"
    assert first["data"] | {"clicked_at": None} == {
        "campaign_id": link.campaign_id,
        "recipient_id": link.recipient_id,
        "url": TARGET,
        "first_click": True,
        "clicked_at": None,
        "user_agent_category": "mobile",
    }
    assert (second["data"]["first_click"], second["data"]["user_agent_category"]) == (False, "desktop")
    assert first["data"]["clicked_at"].endswith("Z") and first["data"]["clicked_at"] == first["timestamp"]


def test_no_event_for_an_expired_unknown_or_unsubscribed_link(alice, receiver, client, code):
    endpoint_create(actor=alice, url=receiver.url, event_types=["message.sent"])
    assert client.get(f"/l/{code}").status_code == 302
    ShortLink.objects.filter(code=code).update(expires_at=timezone.now() - timedelta(seconds=1))
    endpoint_create(actor=alice, url=receiver.url, event_types=["link.clicked"])
    assert client.get(f"/l/{code}").status_code == 410
    assert client.get("/l/AAAAAAAAAA").status_code == 404
    assert not OutboxEvent.objects.exists()


def test_the_event_and_the_click_commit_together(alice, receiver, code):
    """The outbox cannot be written (another session holds its table): the click is not counted either."""
    import psycopg
    from django.db import DatabaseError, connection

    from campaigns.shortlinks import record_click

    endpoint_create(actor=alice, url=receiver.url, event_types=["link.clicked"])
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    with psycopg.connect(**params) as other:
        other.execute("LOCK TABLE events_outboxevent IN ACCESS EXCLUSIVE MODE")
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '200ms'")
        with pytest.raises(DatabaseError):
            record_click(code=code, user_agent="")
        other.rollback()
    with connection.cursor() as cursor:
        cursor.execute("SET lock_timeout = 0")
    link = ShortLink.objects.get(code=code)
    assert link.clicks == 0 and link.first_clicked_at is None  # no click counted without its event
    assert campaign_stats(campaign=link.campaign)["clicks"] == {"total": 0, "unique": 0, "recipients": 0}


def test_an_endpoint_created_here_gets_the_very_next_click(alice, receiver, client, code, settings):
    """The redirect remembers "no endpoint" for a second; creating one in this process forgets it at once."""
    settings.WEBHOOK_ENDPOINT_CACHE_SECONDS = 5  # the product's default: the in-process memory is on
    assert client.get(f"/l/{code}").status_code == 302  # nobody listens: remembered
    endpoint_create(actor=alice, url=receiver.url, event_types=["link.clicked"])
    assert client.get(f"/l/{code}").status_code == 302
    (event,) = OutboxEvent.objects.all()
    assert event.payload["data"]["first_click"] is False and event.payload["type"] == "link.clicked"
