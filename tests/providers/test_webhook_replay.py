"""Issue 16 finding 1: a captured Plivo V2 header cannot be replayed or carry a forged body.

V2 signs only the URL and the nonce. Each V2 nonce is accepted once (Redis), and
every Plivo URL carries PLIVO_WEBHOOK_SECRET; the old paths without it are gone.
"""

from __future__ import annotations

import os
from urllib.parse import urlencode

import pytest

from devtools.fake_provider.plivo import plivo_signature_headers, plivo_v2_signature
from providers.backends.plivo import status_callback_url
from providers.errors import ConfigurationError
from providers.models import ProviderEvent
from providers.webhooks import plivo as plivo_hooks
from recipients.models import Recipient
from tests.providers.conftest import PLIVO_SECRET, PLIVO_TOKEN, signed_plivo_post

pytestmark = pytest.mark.django_db
BASE = "https://sms.example.com"
INBOUND = f"/webhooks/plivo/{PLIVO_SECRET}/inbound/"
STATUS = f"/webhooks/plivo/{PLIVO_SECRET}/status/42/"


@pytest.fixture(autouse=True)
def webhook_settings(settings):
    settings.PLIVO_AUTH_TOKEN = PLIVO_TOKEN
    settings.PLIVO_WEBHOOK_SECRET = PLIVO_SECRET
    settings.PUBLIC_BASE_URL = BASE


def v2_headers(path: str) -> dict[str, str]:
    """A V2-only header set, as an older Plivo application (or a captured request) sends it."""
    nonce = str(int.from_bytes(os.urandom(8), "big"))
    return {
        "X-Plivo-Signature-V2": plivo_v2_signature(BASE + path, nonce, PLIVO_TOKEN),
        "X-Plivo-Signature-V2-Nonce": nonce,
    }


def post(client, path: str, params: dict, headers: dict):
    return client.post(path, data=urlencode(params), content_type="application/x-www-form-urlencoded", headers=headers)


def inbound(text: str, sender: str = "14155552671", uuid: str = "in-1") -> dict:
    return {"From": sender, "To": "14155550100", "Type": "sms", "Text": text, "MessageUUID": uuid}


def test_a_v2_only_request_is_accepted_once_and_its_replay_refused(client):
    headers = v2_headers(INBOUND)

    assert post(client, INBOUND, inbound("hello"), headers).status_code == 200
    replay = post(client, INBOUND, inbound("hello", uuid="in-2"), headers)

    assert replay.status_code == 403 and b"replayed" in replay.content
    assert list(ProviderEvent.objects.values_list("provider_message_id", flat=True)) == ["in-1"]


def test_a_forged_start_with_a_captured_v2_header_does_not_resubscribe(client, make_recipients):
    (person,) = make_recipients(1, consent="opted_out")
    captured = v2_headers(INBOUND)
    assert post(client, INBOUND, inbound("thanks", sender=person.phone.lstrip("+")), captured).status_code == 200

    forged = post(client, INBOUND, inbound("START", sender=person.phone.lstrip("+"), uuid="forged"), captured)
    yes = post(client, INBOUND, inbound("YES", sender="14155559999", uuid="forged-2"), captured)

    assert (forged.status_code, yes.status_code) == (403, 403)
    person.refresh_from_db()
    assert person.consent_status == "opted_out"
    assert not Recipient.objects.filter(phone="+14155559999").exists()


def test_a_v2_header_signed_for_another_url_is_refused(client):
    headers = v2_headers(f"/webhooks/plivo/{PLIVO_SECRET}/status/41/")

    assert post(client, STATUS, {"Status": "delivered", "MessageUUID": "u"}, headers).status_code == 403
    assert ProviderEvent.objects.count() == 0


def test_v3_is_used_when_present_and_needs_no_nonce_store(client, settings):
    """A provider retry of a V3-signed report (same nonce) is accepted: V3 covers the body, so it is the same report."""
    params = {"Status": "delivered", "MessageUUID": "u"}
    headers = plivo_signature_headers("POST", BASE + STATUS, params, PLIVO_TOKEN)

    assert post(client, STATUS, params, headers).status_code == 200
    assert post(client, STATUS, params, headers).status_code == 200
    # ... while a V3 header that does not match is never rescued by the V2 one beside it.
    assert post(client, STATUS, {**params, "Status": "failed"}, headers).status_code == 403


@pytest.mark.parametrize("path", ["/webhooks/plivo/inbound/", "/webhooks/plivo/status/42/"])
def test_the_old_urls_without_the_secret_are_gone(client, path):
    params = inbound("START")
    response = signed_plivo_post(client, path, params)

    assert response.status_code == 404 and ProviderEvent.objects.count() == 0


@pytest.mark.parametrize("secret", ["wrong", PLIVO_SECRET[:-1], PLIVO_SECRET + "x"])
def test_a_validly_signed_request_to_a_wrong_secret_is_refused(client, secret):
    response = signed_plivo_post(client, f"/webhooks/plivo/{secret}/inbound/", inbound("START"))

    assert response.status_code == 403 and ProviderEvent.objects.count() == 0


def test_rotation_accepts_the_old_secret_and_sends_the_new_one(client, settings):
    settings.PLIVO_WEBHOOK_SECRET = "new-secret, " + PLIVO_SECRET

    assert signed_plivo_post(client, INBOUND, inbound("hi")).status_code == 200
    assert status_callback_url("7") == f"{BASE}/webhooks/plivo/new-secret/status/7/"
    assert plivo_hooks.inbound_url() == f"{BASE}/webhooks/plivo/new-secret/inbound/"


def test_without_a_secret_plivo_sends_fail_and_callbacks_are_refused(client, settings):
    settings.PLIVO_WEBHOOK_SECRET = ""

    with pytest.raises(ConfigurationError):
        status_callback_url("7")
    assert signed_plivo_post(client, INBOUND, inbound("hi")).status_code == 403


def test_a_v2_only_request_is_refused_with_503_when_the_replay_store_is_down(client, settings):
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"}
    }
    response = post(client, INBOUND, inbound("hi"), v2_headers(INBOUND))

    assert response.status_code == 503 and ProviderEvent.objects.count() == 0


def test_a_captured_v3_and_v2_request_stripped_of_v3_cannot_carry_a_forged_start(client, make_recipients):
    """Plivo sends V3 and V2 side by side (with their own nonces). Accepting the V3 spends the V2 nonce."""
    (person,) = make_recipients(1, consent="opted_out")
    sender = person.phone.lstrip("+")
    params = inbound("thanks", sender=sender)
    v3 = {
        k: v
        for k, v in plivo_signature_headers("POST", BASE + INBOUND, params, PLIVO_TOKEN, nonce="31").items()
        if "V3" in k
    }
    captured = {**v3, **v2_headers(INBOUND)}
    assert post(client, INBOUND, params, captured).status_code == 200

    stripped = {k: v for k, v in captured.items() if "V3" not in k}
    forged = post(client, INBOUND, inbound("START", sender=sender, uuid="forged"), stripped)

    assert forged.status_code == 403
    person.refresh_from_db()
    assert person.consent_status == "opted_out"
    assert list(ProviderEvent.objects.values_list("provider_message_id", flat=True)) == ["in-1"]


def test_the_replay_store_refuses_with_503_through_the_degrading_production_cache(client, settings):
    """The default cache answers 'added' while Redis is down; the replay store must not believe it."""
    from smsportal import redis_clients

    redis_clients.reset()
    settings.CACHES = {
        "default": {
            "BACKEND": "smsportal.cache.DegradingRedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"socket_timeout": 0.3, "socket_connect_timeout": 0.3},
        }
    }
    try:
        headers = v2_headers(INBOUND)
        first = post(client, INBOUND, inbound("hi"), headers)
        replay = post(client, INBOUND, inbound("START", uuid="in-2"), headers)
    finally:
        redis_clients.reset()

    assert (first.status_code, replay.status_code) == (503, 503)
    assert ProviderEvent.objects.count() == 0
