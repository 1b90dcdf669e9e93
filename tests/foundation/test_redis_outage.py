"""A Redis that accepts connections and never answers must not take the site down.

Each request must finish (generous bounds: seconds, not the 30 s of a hang) with its
degraded behaviour: throttles and login limits fail open, opt-outs go through the
database, a launch is committed and picked up by the sweeper later, /health says 503
and names the part that is down.
"""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest

from campaigns.models import Campaign
from messaging.models import Message
from smsportal import redis_clients
from smsportal.celery import app

# Far below the 30 s of a hang, far above the ~1-2 s timeouts, even on a busy machine.
BOUND_SECONDS = 10


# A hung connection is dropped after this long, so that code without timeouts fails the
# bounds below instead of hanging the test run forever.
HANG_SECONDS = 20


@pytest.fixture
def hung_redis_url():
    """A TCP server that accepts every connection and never sends a byte."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.1)
    held: list[tuple[socket.socket, float]] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            for conn, since in list(held):
                if time.monotonic() - since > HANG_SECONDS:
                    conn.close()
            try:
                held.append((server.accept()[0], time.monotonic()))
            except TimeoutError:
                continue
            except OSError:
                return

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"redis://127.0.0.1:{server.getsockname()[1]}/0"
    stop.set()
    thread.join()
    for conn, _ in held:
        conn.close()
    server.close()


# Shorter than the 1 s default only to keep these tests quick; the behaviour is the same.
TIMEOUT = 0.3


@pytest.fixture
def redis_hangs(settings, hung_redis_url):
    """The cache and every direct Redis client point at the hung server."""
    redis_clients.reset()
    settings.REDIS_TIMEOUT_SECONDS = TIMEOUT
    settings.REDIS_URL = hung_redis_url
    settings.CACHES = {
        "default": {
            **settings.CACHES["default"],
            "LOCATION": hung_redis_url,
            "OPTIONS": {"socket_timeout": TIMEOUT, "socket_connect_timeout": TIMEOUT},
        },
    }
    yield hung_redis_url
    redis_clients.reset()


@pytest.fixture
def broker_hangs(settings, monkeypatch, hung_redis_url):
    """Tasks are published for real (not run eagerly) to the hung server.

    The Celery app reads its configuration through Django's settings, so these apply to it.
    """
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CELERY_BROKER_URL = hung_redis_url
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {
        **settings.CELERY_BROKER_TRANSPORT_OPTIONS,
        "socket_timeout": TIMEOUT,
        "socket_connect_timeout": TIMEOUT,
    }
    assert app.conf.broker_url == hung_redis_url and not app.conf.task_always_eager
    monkeypatch.setattr(app, "_pool", None, raising=False)
    monkeypatch.setattr(app.amqp, "_producer_pool", None, raising=False)
    yield hung_redis_url
    if app._pool is not None:
        app._pool.force_close_all()
    redis_clients.reset()


def timed(call):
    started = time.monotonic()
    result = call()
    return result, time.monotonic() - started


def test_an_api_request_passes_unthrottled(bob, redis_hangs, caplog):
    from rest_framework.test import APIClient

    from accounts.services import api_token_create

    _, raw = api_token_create(actor=bob, user=bob, name="tests")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    with caplog.at_level("WARNING"):
        response, took = timed(lambda: client.get("/api/v1/lists"))
        again, took_again = timed(lambda: client.get("/api/v1/lists"))

    assert response.status_code == 200 and again.status_code == 200
    assert took < BOUND_SECONDS and took_again < BOUND_SECONDS
    assert "is not answering" in caplog.text


def test_login_works_without_the_attempt_counter(client, bob, redis_hangs):
    response, took = timed(lambda: client.post("/accounts/login/", {"login": "bob", "password": "pw-bob"}))

    assert response.status_code == 302, response.content[:500]
    assert took < BOUND_SECONDS
    assert client.get("/").status_code == 200


def test_health_answers_503_naming_redis(db, client, redis_hangs):
    response, took = timed(lambda: client.get("/health"))

    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["database"] == "ok"
    assert checks["redis"].startswith("error")
    assert took < BOUND_SECONDS


def test_health_answers_503_naming_the_broker(db, client, broker_hangs):
    response, took = timed(lambda: client.get("/health"))

    assert response.status_code == 503
    assert response.json()["checks"]["broker"].startswith("error")
    assert response.json()["checks"]["redis"] == "ok"
    assert took < BOUND_SECONDS


def test_a_stop_by_webhook_opts_out_through_the_database(
    client, settings, make_recipients, redis_hangs, django_capture_on_commit_callbacks
):
    from providers.backends import locmem
    from recipients.models import Recipient

    secret = "s3cret-flowroute-path"
    settings.FLOWROUTE_WEBHOOK_SECRET = secret
    person = make_recipients(1, recipient_list="l")[0]
    body = {"data": {"id": "mdr2-1", "attributes": {"body": "STOP", "from": person.phone[1:], "to": "14155550100"}}}

    with django_capture_on_commit_callbacks(execute=True):  # the opt-out signal, the STOP reply
        response, took = timed(
            lambda: client.post(
                f"/webhooks/flowroute/{secret}/inbound/", data=json.dumps(body), content_type="application/json"
            )
        )

    assert response.status_code == 200
    assert took < BOUND_SECONDS
    assert Recipient.objects.get(pk=person.pk).consent_status == "opted_out"
    assert [m.to for m in locmem.outbox] == [person.phone]  # the STOP confirmation still went out


def test_the_opt_out_signal_degrades_to_nothing_quickly(redis_hangs):
    from messaging import optouts

    _, took = timed(lambda: optouts.announce_opt_out("+14155552671"))
    assert took < BOUND_SECONDS
    assert not redis_clients.available()  # the next caller skips Redis at once


def test_a_campaigns_outcomes_are_judged_group_by_group_quickly(bob, make_sender, make_campaign, redis_hangs):
    """The auto-pause window keeps nothing while Redis hangs, as the cache would: recording outcomes
    never fails the batch that sent them, and each group is judged on its own."""
    from messaging import hooks
    from messaging.hooks import CampaignOutcomes

    campaign = make_campaign(bob, senders=[make_sender(bob)])
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.SENDING)

    def record(failed: int) -> None:
        outcome = CampaignOutcomes(
            campaign_id=campaign.pk, accepted=0, failed=failed, by_provider={"plivo": (0, failed)}
        )
        hooks.campaigns().after_outcomes([outcome])

    for _ in range(3):
        _, took = timed(lambda: record(30))  # 90 failed sends, 30 a group: no group reaches 50
        assert took < BOUND_SECONDS
    assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.SENDING
    record(50)
    assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.PAUSED
    assert not redis_clients.available()


def test_a_web_launch_answers_and_the_sweeper_starts_it_later(
    client,
    bob,
    make_sender,
    make_recipients,
    make_campaign,
    broker_hangs,
    django_capture_on_commit_callbacks,
    settings,
    monkeypatch,
):
    from campaigns.tasks import run_sweep

    make_recipients(3, recipient_list="l")
    campaign = make_campaign(bob, lists=["l"], senders=[make_sender(bob)])
    client.force_login(bob)

    with django_capture_on_commit_callbacks(execute=True):
        response, took = timed(lambda: client.post(f"/campaigns/{campaign.pk}/confirm"))

    assert response.status_code == 302
    assert took < BOUND_SECONDS
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SENDING and not campaign.materialized
    assert not Message.objects.filter(campaign=campaign).exists()

    # The broker answers again (tasks run here, eagerly): beat's sweep starts the campaign.
    settings.CELERY_TASK_ALWAYS_EAGER = True
    redis_clients.reset()
    run_sweep()
    run_sweep()
    assert Message.objects.filter(campaign=campaign).count() == 3


def test_health_reports_beat_by_its_last_published_task(db, client, settings):
    from smsportal import beat

    assert client.get("/health").json()["checks"]["beat"] == "not seen"  # no beat ever ran: not an error
    assert client.get("/health").status_code == 200

    beat.publish_heartbeat(now=time.time() - settings.BEAT_HEARTBEAT_MAX_AGE - 30)
    response = client.get("/health")
    assert response.status_code == 503
    assert response.json()["checks"]["beat"].startswith("error: last task published")

    beat.publish_heartbeat()
    assert client.get("/health").json() == {
        "ok": True,
        "checks": {"database": "ok", "redis": "ok", "broker": "ok", "beat": "ok"},
    }


def test_a_delivery_report_is_stored_and_answered_while_redis_and_broker_hang(
    db, client, settings, redis_hangs, broker_hangs, django_capture_on_commit_callbacks
):
    from providers.models import ProviderEvent

    secret = "s3cret-flowroute-path"
    settings.FLOWROUTE_WEBHOOK_SECRET = secret
    report = {"data": {"id": "mdr2-7", "attributes": {"status": "delivered", "status_code": "1000"}}}

    with django_capture_on_commit_callbacks(execute=True):
        response, took = timed(
            lambda: client.post(
                f"/webhooks/flowroute/{secret}/status/7/", data=json.dumps(report), content_type="application/json"
            )
        )

    assert response.status_code == 200
    assert took < BOUND_SECONDS
    assert ProviderEvent.objects.filter(provider_message_id="mdr2-7", processed_at__isnull=True).exists()
