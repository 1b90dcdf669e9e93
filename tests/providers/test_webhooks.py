"""Status and inbound webhooks through the real URLs: authentication, parsing, status mapping."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime

import pytest

from providers.models import ProviderEvent
from providers.status import DeliveryStatus
from providers.webhooks import flowroute as flowroute_hooks
from providers.webhooks import plivo as plivo_hooks
from tests.providers.conftest import PLIVO_SECRET, PLIVO_TOKEN, signed_plivo_post

pytestmark = pytest.mark.django_db
SECRET = "s3cret-flowroute-path"
STATUS_PATH = f"/webhooks/plivo/{PLIVO_SECRET}/status/42/"
INBOUND_PATH = f"/webhooks/plivo/{PLIVO_SECRET}/inbound/"


@pytest.fixture(autouse=True)
def webhook_settings(settings):
    settings.PLIVO_AUTH_TOKEN = PLIVO_TOKEN
    settings.PLIVO_WEBHOOK_SECRET = PLIVO_SECRET
    settings.FLOWROUTE_WEBHOOK_SECRET = SECRET
    settings.PUBLIC_BASE_URL = "https://sms.example.com"


def plivo_status(status="delivered", **extra):
    return {
        "MessageUUID": "uuid-part",
        "ParentMessageUUID": "uuid-parent",
        "PartInfo": "1 of 1",
        "To": "14155552671",
        "From": "14155550100",
        "Status": status,
        "DeliveryReportTime": "2026-03-01 12:00:01.123456",
        **extra,
    }


def flowroute_dlr(status="delivered", code="1000", desc="Message delivered to handset"):
    return {
        "data": {
            "type": "delivery_receipt",
            "id": "mdr2-abc",
            "attributes": {
                "body": "Hello",
                "level": 2,
                "status": status,
                "status_code": code,
                "status_code_description": desc,
                "timestamp": "2026-03-01T12:00:01.5Z",
            },
        }
    }


def post_json(client, path, body):
    return client.post(path, data=json.dumps(body), content_type="application/json")


# --- Plivo status callbacks ----------------------------------------------------------


def test_a_signed_plivo_callback_is_stored_for_our_message(client):
    response = signed_plivo_post(client, STATUS_PATH, plivo_status())

    assert response.status_code == 200
    (event,) = ProviderEvent.objects.all()
    assert (event.provider, event.kind, event.message_ref, event.status) == ("plivo", "status", "42", "delivered")
    assert event.provider_message_id == "uuid-parent"  # the part reports under the parent's id
    assert event.occurred_at.isoformat() == "2026-03-01T12:00:01.123456+00:00"
    assert event.payload["Status"] == "delivered" and event.processed_at is None


def test_a_plivo_failure_keeps_the_error_code(client):
    signed_plivo_post(client, STATUS_PATH, plivo_status("undelivered", ErrorCode="80"))

    event = ProviderEvent.objects.get()
    assert (event.status, event.error_code) == ("undelivered", "80")
    assert "80" in event.error_text


def test_plivo_v2_alone_is_accepted(client):
    params = plivo_status()
    from devtools.fake_provider.plivo import plivo_v2_signature

    headers = {
        "X-Plivo-Signature-V2": plivo_v2_signature("https://sms.example.com" + STATUS_PATH, "777", PLIVO_TOKEN),
        "X-Plivo-Signature-V2-Nonce": "777",
    }
    response = client.post(STATUS_PATH, data=params, headers=headers)

    assert response.status_code == 200 and ProviderEvent.objects.count() == 1


def test_the_main_account_v3_header_is_accepted(client):
    from devtools.fake_provider.plivo import plivo_v3_signature

    params = plivo_status()
    sig = plivo_v3_signature("POST", "https://sms.example.com" + STATUS_PATH, "5", PLIVO_TOKEN, params)
    headers = {"X-Plivo-Signature-Ma-V3": f"bm9wZQ==,{sig}", "X-Plivo-Signature-V3-Nonce": "5"}
    response = client.post(STATUS_PATH, data=params, headers=headers)

    assert response.status_code == 200 and ProviderEvent.objects.count() == 1


@pytest.mark.parametrize(
    "forge",
    [
        "unsigned",
        "wrong token",
        "tampered body",
        "signed for the Host header, not the public URL",
        "other message",
    ],
)
def test_forged_plivo_callbacks_are_refused_and_change_nothing(client, forge):
    params = plivo_status()
    if forge == "unsigned":
        response = client.post(STATUS_PATH, data=params)
    elif forge == "wrong token":
        response = signed_plivo_post(client, STATUS_PATH, params, token="not-our-token")
    elif forge == "tampered body":
        from devtools.fake_provider.plivo import plivo_signature_headers

        # The V2 header stays: it signs only the URL and must not rescue a body the V3 signature does not match.
        headers = plivo_signature_headers("POST", "https://sms.example.com" + STATUS_PATH, params, PLIVO_TOKEN)
        response = client.post(STATUS_PATH, data={**params, "Status": "failed"}, headers=headers)
    elif forge == "signed for the Host header, not the public URL":
        response = signed_plivo_post(client, STATUS_PATH, params, base="http://testserver")
    else:
        from devtools.fake_provider.plivo import plivo_signature_headers

        headers = plivo_signature_headers(
            "POST", f"https://sms.example.com/webhooks/plivo/{PLIVO_SECRET}/status/41/", params, PLIVO_TOKEN
        )
        response = client.post(STATUS_PATH, data=params, headers=headers)

    assert response.status_code == 403
    assert ProviderEvent.objects.count() == 0


def test_plivo_callbacks_are_refused_when_no_token_is_configured(client, settings):
    settings.PLIVO_AUTH_TOKEN = ""
    response = signed_plivo_post(client, STATUS_PATH, plivo_status(), token=PLIVO_TOKEN)

    assert response.status_code == 403 and ProviderEvent.objects.count() == 0


def test_a_signed_plivo_callback_without_status_is_a_400(client):
    params = plivo_status()
    del params["Status"]
    response = signed_plivo_post(client, STATUS_PATH, params)

    assert response.status_code == 400 and ProviderEvent.objects.count() == 0


@pytest.mark.parametrize("path", [STATUS_PATH, INBOUND_PATH, f"/webhooks/flowroute/{SECRET}/inbound/"])
def test_webhooks_answer_only_post(client, path):
    assert client.get(path).status_code == 405
    assert client.put(path).status_code == 405
    assert ProviderEvent.objects.count() == 0


def test_webhooks_need_no_csrf_token(settings):
    from django.test import Client

    csrf_client = Client(enforce_csrf_checks=True)
    response = signed_plivo_post(csrf_client, STATUS_PATH, plivo_status())

    assert response.status_code == 200


# --- Flowroute delivery receipts -----------------------------------------------------


def test_a_flowroute_receipt_with_the_secret_is_stored(client):
    response = post_json(client, f"/webhooks/flowroute/{SECRET}/status/7/", flowroute_dlr())

    assert response.status_code == 200
    (event,) = ProviderEvent.objects.all()
    assert (event.provider, event.message_ref, event.status) == ("flowroute", "7", "delivered")
    assert event.provider_message_id == "mdr2-abc" and event.error_code == ""
    assert event.payload["data"]["attributes"]["status_code"] == "1000"


def test_a_flowroute_failure_keeps_code_and_description(client):
    post_json(client, f"/webhooks/flowroute/{SECRET}/status/7/", flowroute_dlr("undeliverable", "1050", "No route"))

    event = ProviderEvent.objects.get()
    assert (event.status, event.error_code, event.error_text) == ("undelivered", "1050", "No route")


@pytest.mark.parametrize("secret", ["wrong", SECRET[:-1], SECRET + "x", "%20"])
def test_a_wrong_flowroute_secret_is_refused(client, secret):
    response = post_json(client, f"/webhooks/flowroute/{secret}/status/7/", flowroute_dlr())

    assert response.status_code == 403 and ProviderEvent.objects.count() == 0


def test_flowroute_secrets_rotate(client, settings):
    settings.FLOWROUTE_WEBHOOK_SECRET = "new-one,old-one"

    assert post_json(client, "/webhooks/flowroute/old-one/status/1/", flowroute_dlr()).status_code == 200
    assert post_json(client, "/webhooks/flowroute/new-one/status/2/", flowroute_dlr()).status_code == 200
    assert post_json(client, f"/webhooks/flowroute/{SECRET}/status/3/", flowroute_dlr()).status_code == 403
    assert sorted(ProviderEvent.objects.values_list("message_ref", flat=True)) == ["1", "2"]


def test_with_no_secret_configured_every_flowroute_callback_is_refused(client, settings):
    settings.FLOWROUTE_WEBHOOK_SECRET = ""

    assert post_json(client, "/webhooks/flowroute/x/status/1/", flowroute_dlr()).status_code in (403, 404)
    assert ProviderEvent.objects.count() == 0


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[1, 2]",
        b'{"data": "x"}',
        b'{"data": {"attributes": {"level": 1}}}',
        b'{"data": {"attributes": {"status": 5}}}',
        b"\xff\xfe",
    ],
)
def test_malformed_flowroute_bodies_are_a_400(client, body):
    response = client.post(f"/webhooks/flowroute/{SECRET}/status/7/", data=body, content_type="application/json")

    assert response.status_code == 400 and ProviderEvent.objects.count() == 0


# --- Status mapping --------------------------------------------------------------------

S = DeliveryStatus


@pytest.mark.parametrize(
    ("word", "status"),
    [
        ("queued", S.QUEUED),
        ("sent", S.SENT),
        ("delivered", S.DELIVERED),
        ("undelivered", S.UNDELIVERED),
        ("failed", S.FAILED),
        ("rejected", S.FAILED),
        ("Delivered", S.DELIVERED),
        ("expired", S.UNDELIVERED),
        ("read", S.SENT),  # WhatsApp only; unknown words never finish a message
        ("something-new", S.SENT),
    ],
)
def test_plivo_status_mapping(word, status):
    assert plivo_hooks.map_status(word) == status


@pytest.mark.parametrize(
    ("word", "status"),
    [
        ("smsc submit", S.SENT),
        ("message buffered", S.SENT),
        ("delivered", S.DELIVERED),
        ("undeliverable", S.UNDELIVERED),
        ("undelivered", S.UNDELIVERED),
        ("expired", S.UNDELIVERED),
        ("failed", S.FAILED),
        ("rejected", S.FAILED),
        ("SMSC  Submit", S.SENT),
        ("delivery failed", S.FAILED),
        ("smsc reject", S.FAILED),
        ("message enroute", S.SENT),
        ("", S.SENT),
    ],
)
def test_flowroute_status_mapping(word, status):
    assert flowroute_hooks.map_status(word) == status


# --- Inbound ---------------------------------------------------------------------------


def test_plivo_inbound_sms(client):
    params = {
        "From": "14155552671",
        "To": "14155550100",
        "Type": "sms",
        "Text": "STOP",
        "MessageUUID": "in-1",
        "MessageIntent": "optout",
    }
    response = signed_plivo_post(client, INBOUND_PATH, params)

    assert response.status_code == 200
    event = ProviderEvent.objects.get(kind="inbound")
    assert (event.provider, event.provider_message_id, event.payload["Text"]) == ("plivo", "in-1", "STOP")
    assert event.processed_at is not None


def test_plivo_inbound_parsing_of_mms():
    inbound = plivo_hooks.parse_inbound(
        {
            "From": "14155552671",
            "To": "14155550100",
            "Type": "mms",
            "Body": "Look at this",
            "MediaCount": "3",
            "Media10": "https://m/c",
            "Media2": "https://m/b",
            "Media1": "https://m/a",
            "MediaUrl": "ignored",
            "MessageUUID": "in-2",
        }
    )

    assert (inbound.sender, inbound.to, inbound.text) == ("+14155552671", "+14155550100", "Look at this")
    assert inbound.media_urls == ("https://m/a", "https://m/b", "https://m/c")


def test_an_unsigned_plivo_inbound_is_refused(client):
    response = client.post(INBOUND_PATH, data={"From": "14155552671", "To": "1", "Text": "STOP"})

    assert response.status_code == 403 and ProviderEvent.objects.count() == 0


def test_a_signed_plivo_inbound_without_from_is_a_400(client):
    response = signed_plivo_post(client, INBOUND_PATH, {"To": "14155550100", "Text": "hi"})

    assert response.status_code == 400 and ProviderEvent.objects.count() == 0


def test_flowroute_inbound_mms(client):
    body = {
        "data": {
            "type": "message",
            "id": "mdr2-in",
            "attributes": {"body": "pic", "from": "14155552671", "to": "14155550100", "is_mms": True},
        },
        "included": [
            {"type": "media", "attributes": {"url": "https://m/1.jpg", "mime_type": "image/jpeg"}},
            {"type": "other", "attributes": {"url": "https://m/not-media"}},
        ],
    }
    response = post_json(client, f"/webhooks/flowroute/{SECRET}/inbound/", body)

    assert response.status_code == 200
    inbound = flowroute_hooks.parse_inbound(body)
    assert (inbound.sender, inbound.to, inbound.text) == ("+14155552671", "+14155550100", "pic")
    assert inbound.media_urls == ("https://m/1.jpg",)
    assert ProviderEvent.objects.get(kind="inbound").provider_message_id == "mdr2-in"


def test_flowroute_inbound_with_a_wrong_secret_is_refused(client):
    body = {"data": {"attributes": {"body": "STOP", "from": "14155552671", "to": "14155550100"}}}

    assert post_json(client, "/webhooks/flowroute/nope/inbound/", body).status_code == 403
    assert ProviderEvent.objects.count() == 0


def test_a_refused_flowroute_callback_does_not_log_the_secret(client, settings, caplog):
    settings.FLOWROUTE_WEBHOOK_SECRET = f"{SECRET},other"
    with caplog.at_level("WARNING"):
        client.post(f"/webhooks/flowroute/{SECRET}/status/7/", data=b"junk", content_type="application/json")

    assert "refused (400)" in caplog.text
    assert SECRET not in caplog.text


def test_a_retried_inbound_is_stored_once(client):
    params = {"From": "14155552671", "To": "14155550100", "Type": "sms", "Text": "STOP", "MessageUUID": "in-9"}
    body = {"data": {"id": "mdr2-9", "attributes": {"body": "STOP", "from": "14155552671", "to": "14155550100"}}}
    for _ in range(2):
        assert signed_plivo_post(client, INBOUND_PATH, params).status_code == 200
        assert post_json(client, f"/webhooks/flowroute/{SECRET}/inbound/", body).status_code == 200

    assert sorted(ProviderEvent.objects.values_list("provider_message_id", flat=True)) == ["in-9", "mdr2-9"]


def test_an_overlong_message_reference_is_a_400(client):
    response = post_json(client, f"/webhooks/flowroute/{SECRET}/status/{'9' * 65}/", flowroute_dlr())

    assert response.status_code == 400 and ProviderEvent.objects.count() == 0


def _strptime_reading(value: str):
    """What Plivo times meant before the fast path: strptime's rules, UTC."""
    value = value.strip()
    fmt = "%Y-%m-%d %H:%M:%S.%f" if "." in value else "%Y-%m-%d %H:%M:%S"
    try:
        return datetime.strptime(value, fmt).replace(tzinfo=UTC)
    except ValueError:
        return None


ODD_TIMES = [
    "2026-01-02 03:04:05",
    "2026-01-02 03:04:05.123456",
    "2026-01-02 03:04:05.1",
    "2026-01-02 03:04:05.000001",
    "  2026-01-02 03:04:05.5 \n",
    "2024-02-29 23:59:59",  # leap day
    "2026-02-29 00:00:00",  # not a leap year
    "2026-04-31 00:00:00",
    "2026-13-01 00:00:00",
    "2026-00-10 00:00:00",
    "2026-01-00 00:00:00",
    "2026-01-02 24:00:00",
    "2026-01-02 23:60:00",
    "2026-01-02 23:59:60",  # a leap second
    "2026-01-02 23:59:61",
    "0000-01-02 03:04:05",
    "0001-01-01 00:00:00",
    "9999-12-31 23:59:59.999999",
    "2026-01-02 03:04:05.",
    "2026-01-02 03:04:05.1234567",
    "2026-01-02 03:04:05.12a",
    "2026-1-2 3:4:5",  # single digits: strptime takes them
    "2026-01-02  03:04:05",  # two spaces: so does strptime
    "2026-01-02\t03:04:05",
    "2026-01-02T03:04:05",
    "2026/01/02 03:04:05",
    "2026-01-02 03:04:05+00:00",
    "\uff12\uff10\uff12\uff16-01-02 03:04:05",  # full-width digits
    "2026-01-02 03:04:0\u0665",  # an Arabic-Indic digit
    "+026-01-02 03:04:05",
    "2026-01-02 03:04:-5",
    "2026-01-02 03:04: 5",
    "",
    "   ",
    "garbage",
]


@pytest.mark.parametrize("value", ODD_TIMES)
def test_plivo_times_read_as_strptime_reads_them(value):
    assert plivo_hooks.parse_time(value) == _strptime_reading(value)


def test_plivo_times_read_as_strptime_reads_them_over_many_shapes():
    rng = random.Random(21)
    alphabet = "0123456789-: .9"
    for _ in range(20000):
        base = list("2026-01-02 03:04:05.123456"[: rng.choice([19, 20, 21, 23, 26, 27])])
        for _ in range(rng.randint(0, 3)):
            base[rng.randrange(len(base))] = rng.choice(alphabet)
        value = "".join(base)
        assert plivo_hooks.parse_time(value) == _strptime_reading(value), value
