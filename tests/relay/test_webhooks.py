"""Routing over real HTTP: the fake provider posts signed inbound webhooks to a live server.

The live server runs in this process, so Celery's eager mode sends the relayed
messages right after the webhook's transaction commits.
"""

from __future__ import annotations

import pytest

from messaging.models import Message
from providers.backends import locmem
from relay import services
from relay.models import RelayMessage
from tests.conftest import wait_for
from tests.providers.conftest import PLIVO_SECRET
from tests.relay.conftest import A, B, assert_no_leak, message_payloads, outbox_payloads

pytestmark = pytest.mark.django_db(transaction=True)
FLOWROUTE_SECRET = "relay-flowroute-secret"


@pytest.fixture
def wired(fake_provider, live_server, settings):
    """The fake provider signs and posts inbound messages to our live webhooks."""
    cfg = fake_provider.config
    settings.PUBLIC_BASE_URL = live_server.url
    settings.PLIVO_API_URL = settings.FLOWROUTE_API_URL = fake_provider.url
    settings.PLIVO_AUTH_ID, settings.PLIVO_AUTH_TOKEN = cfg.plivo_auth_id, cfg.plivo_auth_token
    settings.PLIVO_WEBHOOK_SECRET = PLIVO_SECRET
    settings.FLOWROUTE_ACCESS_KEY, settings.FLOWROUTE_SECRET_KEY = cfg.flowroute_access_key, cfg.flowroute_secret_key
    settings.FLOWROUTE_WEBHOOK_SECRET = FLOWROUTE_SECRET
    fake_provider.configure(
        callbacks=False,
        plivo_inbound_url=f"{live_server.url}/webhooks/plivo/{PLIVO_SECRET}/inbound/",
        flowroute_inbound_url=f"{live_server.url}/webhooks/flowroute/{FLOWROUTE_SECRET}/inbound/",
    )
    return fake_provider


def send(fake, provider: str, sender: str, to: str, text: str, media=None) -> None:
    answer = fake.send_inbound(provider, sender, to, text, media_urls=media)
    assert answer["status"] == 200, answer


def test_messages_are_relayed_both_ways_over_plivo_webhooks(wired, make_relay_numbers):
    make_relay_numbers(2)
    conv = services.conversation_create(participant_a=A, participant_b=B, name_a="Driver", name_b="Rider")
    locmem.reset()
    send(wired, "plivo", A, conv.virtual_for_a.number, "I am outside", media=["https://media.example/car.jpg"])
    send(wired, "plivo", B, conv.virtual_for_b.number, "coming down")
    to_b, to_a = wait_for(lambda: len(locmem.outbox) == 2 and list(locmem.outbox), timeout=15, message="relays")
    assert (to_b.to, to_b.sender, to_b.body, to_b.media_urls) == (
        B,
        conv.virtual_for_b.number,
        "I am outside",
        ("https://media.example/car.jpg",),
    )
    assert (to_a.to, to_a.sender, to_a.body) == (A, conv.virtual_for_a.number, "coming down")
    assert list(conv.transcript.values_list("direction", "provider")) == [("a_to_b", "plivo"), ("b_to_a", "plivo")]
    assert_no_leak(message_payloads())
    assert_no_leak(outbox_payloads())


def test_an_mms_over_flowroute_webhooks_is_relayed_with_its_media(wired, make_relay_numbers):
    make_relay_numbers(1, provider="flowroute")
    conv = services.conversation_create(participant_a=A, participant_b=B)
    locmem.reset()
    media = [{"url": "https://cdn.example/p.png", "mime_type": "image/png", "file_name": "p.png", "file_size": 10}]
    send(wired, "flowroute", B, conv.virtual_for_b.number, "look", media=media)
    (to_a,) = wait_for(lambda: list(locmem.outbox), timeout=15, message="relay")
    assert (to_a.to, to_a.sender, to_a.body, to_a.provider) == (A, conv.virtual_for_a.number, "look", "flowroute")
    assert to_a.media_urls == ("https://cdn.example/p.png",)


def test_stop_over_a_webhook_closes_the_conversation_and_is_not_relayed(wired, make_relay_numbers):
    make_relay_numbers(1)
    conv = services.conversation_create(participant_a=A, participant_b=B)
    locmem.reset()
    send(wired, "plivo", A, conv.virtual_for_a.number, "STOP")
    wait_for(lambda: len(locmem.outbox) == 2, timeout=15, message="stop replies")
    conv.refresh_from_db()
    assert conv.status == "closed"
    assert all(m.body != "STOP" for m in locmem.outbox)
    assert conv.transcript.get().outcome == "stopped"


def test_unknown_senders_get_the_configured_reply_over_webhooks(wired, make_relay_numbers, settings):
    settings.RELAY_NO_CONVERSATION_REPLY = "No conversation here."
    (number,) = make_relay_numbers(1)
    send(wired, "plivo", A, number.number, "hello?")
    (reply,) = wait_for(lambda: list(locmem.outbox), timeout=15, message="reply")
    assert (reply.to, reply.sender, reply.body) == (A, number.number, "No conversation here.")
    assert RelayMessage.objects.get().outcome == "unmatched"


def test_a_forged_inbound_is_refused_and_nothing_is_relayed(wired, make_relay_numbers):
    make_relay_numbers(1)
    conv = services.conversation_create(participant_a=A, participant_b=B)
    answer = wired.send_inbound("plivo", A, conv.virtual_for_a.number, "forged", tamper_signature=True)
    assert answer["status"] in {400, 403}
    assert not RelayMessage.objects.exists()


def test_end_to_end_through_the_plivo_backend_no_real_number_reaches_the_other_side(
    wired, make_relay_numbers, settings
):
    """Sends go over HTTP to the fake; everything it recorded is checked for leaks."""
    settings.SMS_BACKEND = "providers.backends.plivo.SMSBackend"
    make_relay_numbers(2)
    conv = services.conversation_create(participant_a=A, participant_b=B, name_a="Driver", name_b="Rider")
    wait_for(lambda: len(wired.messages()) == 2, timeout=15, message="introductions")
    send(wired, "plivo", A, conv.virtual_for_a.number, "hi from A", media=["https://media.example/a.jpg"])
    send(wired, "plivo", B, conv.virtual_for_b.number, "hi from B")
    recorded = wait_for(lambda: len(wired.messages()) == 4 and wired.messages(), timeout=15, message="relays")
    assert locmem.outbox == []
    payloads = [("+" + m["dst"].lstrip("+"), m["src"], m["text"], m["media_urls"] or []) for m in recorded]
    assert_no_leak(payloads)
    by_text = {m["text"]: m for m in recorded}
    assert by_text["hi from A"]["dst"].endswith(B[1:]) and by_text["hi from A"]["src"].endswith(
        conv.virtual_for_b.number[1:]
    )
    assert by_text["hi from A"]["media_urls"] == ["https://media.example/a.jpg"]
    assert by_text["hi from B"]["dst"].endswith(A[1:])
    assert set(Message.objects.values_list("status", flat=True)) == {"queued"}
