"""Bad input answers 4xx with a message, never 500 (issue 16, finding 9 and "media URLs").

Explicit regressions for each reported case, then a small hypothesis fuzz of every query parameter
and form field of the staff pages (a few dozen examples in all, to keep the suite fast).
"""

from __future__ import annotations

import json

import pytest
from django.core import mail
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from messaging.compose import MAX_TEMPLATE_CHARS
from smsportal.middleware import NUL_MESSAGE

pytestmark = pytest.mark.django_db


@pytest.fixture
def grant(alice, make_sender):
    return make_sender(alice, number="+14155550100")


@pytest.fixture
def admin_client(client, alice, grant):
    client.force_login(alice)
    return client


@pytest.fixture
def api(alice, grant) -> APIClient:
    from accounts.services import api_token_create

    _, raw = api_token_create(actor=alice, user=alice, name="t")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


# --- NUL bytes -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url", ["/inbox?q=a%00b", "/audit/?actor=%00", "/campaigns/?status=%00", "/recipients/lists/?x%00=1"]
)
def test_a_nul_byte_in_a_query_parameter_is_a_400_with_a_message(admin_client, url):
    response = admin_client.get(url)
    assert response.status_code == 400
    assert NUL_MESSAGE in response.content.decode()


@pytest.mark.parametrize("encoding", ["multipart", "urlencoded"])
def test_a_nul_byte_in_a_form_field_is_a_400_and_nothing_is_saved(admin_client, make_recipients, encoding):
    from urllib.parse import urlencode

    from recipients.models import ConsentEvent

    (recipient,) = make_recipients(1)
    url = reverse("recipients:recipient_opt_out", args=[recipient.pk])
    data = {"reason": "asked\x00by phone"}  # a field the view reads itself: it used to reach the database
    if encoding == "multipart":
        response = admin_client.post(url, data)
    else:
        response = admin_client.post(url, urlencode(data), content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400 and NUL_MESSAGE in response.content.decode()
    assert not ConsentEvent.objects.filter(recipient=recipient).exists()


def test_a_nul_in_api_json_is_a_400(api):
    response = api.post("/api/v1/recipients", {"phone": "+14155550123", "attributes": {"a": "x\x00"}}, format="json")
    assert response.status_code == 400 and response.json()["message"] == NUL_MESSAGE
    assert api.get("/api/v1/recipients?phone=%00").status_code == 400
    literal = api.post("/api/v1/recipients", {"phone": "+14155550123", "first_name": "\\u0000"}, format="json")
    assert literal.status_code == 201 and literal.json()["first_name"] == "\\u0000"  # a backslash, not a NUL


@pytest.mark.parametrize("content_type", ["application/json", "application/x-www-form-urlencoded"])
def test_a_body_over_the_limit_is_a_400_in_the_api_error_shape(api, settings, content_type):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = json.dumps({"name": "a" * 2000}) if content_type.endswith("json") else "name=" + "a" * 2000
    response = api.post("/api/v1/lists", body, content_type=content_type)
    assert response.status_code == 400 and response["Content-Type"] == "application/json"
    assert "larger than 1000 bytes" in response.json()["message"]


# --- API cursor and nested JSON ---------------------------------------------------------------------


@pytest.mark.parametrize("cursor", ["cD0nMSBvciAxPTEn", "cD0tMQ==", "cD0xLjU=", "cD0lMDA="])
def test_a_malformed_cursor_is_a_404_that_says_so(api, cursor):
    response = api.get(f"/api/v1/messages?cursor={cursor}")
    assert response.status_code == 404 and "cursor" in response.json()["message"].lower()


@pytest.mark.parametrize("cursor", ["!!!", "cj0x", "bz05OTk5OTk5OTk5OTk5OTk5OTk5OTk5", "%FF"])
def test_other_odd_cursors_are_never_a_500(api, cursor):
    assert api.get(f"/api/v1/recipients?cursor={cursor}").status_code in (200, 404)


def test_the_api_still_follows_its_own_cursors(api, make_recipients):
    make_recipients(3)
    first = api.get("/api/v1/recipients?page_size=2").json()
    second = api.get(first["next"]).json()
    assert len(first["results"]) == 2 and len(second["results"]) == 1


NESTED = "[" * 100_000 + "]" * 100_000


def test_deeply_nested_json_is_a_400_in_the_api(api):
    response = api.post("/api/v1/lists", NESTED, content_type="application/json")
    assert response.status_code == 400 and "nested too deeply" in response.json()["message"]


def test_deeply_nested_json_is_refused_by_the_flowroute_webhook(client, settings):
    settings.FLOWROUTE_WEBHOOK_SECRET = secret = "s3cret-flowroute-path"
    for kind in ("inbound", "status/1"):
        response = client.post(f"/webhooks/flowroute/{secret}/{kind}/", NESTED, content_type="application/json")
        assert 400 <= response.status_code < 500, kind


# --- One body limit for the web composer and the API ------------------------------------------------


def test_the_web_composer_caps_the_body_like_the_api(admin_client, api, make_recipients):
    from campaigns.models import Campaign
    from recipients.models import RecipientList

    make_recipients(1, recipient_list="Members")
    lst = RecipientList.objects.get()
    form = {"name": "Too long", "lists": [lst.pk], "body": "x" * (MAX_TEMPLATE_CHARS + 1), "timezone": "UTC"}
    response = admin_client.post(reverse("campaign_new"), form)
    assert response.status_code == 400
    assert f"at most {MAX_TEMPLATE_CHARS}" in response.content.decode()
    assert api.post("/api/v1/campaigns", {**form, "lists": [lst.pk]}, format="json").status_code == 400
    sent = api.post("/api/v1/messages/send", {"to": "+14155550123", "body": "x" * (MAX_TEMPLATE_CHARS + 1)})
    assert sent.status_code == 400
    assert not Campaign.objects.exists()


# --- Media URLs: one rule, web and API ---------------------------------------------------------------

INTERNAL_MEDIA = [  # the full list of refused forms is unit-tested in tests/compose/test_compose.py
    "https://169.254.169.254/latest/meta-data/",
    "https://[::1]/a.jpg",
    "https://db.internal/a.jpg",
]


@pytest.mark.parametrize("url", INTERNAL_MEDIA)
def test_media_urls_must_be_public_https_names_on_the_web_and_in_the_api(admin_client, api, make_recipients, url):
    from campaigns.models import Campaign
    from messaging.models import Message
    from recipients.models import RecipientList

    make_recipients(1, recipient_list="Members")
    lst = RecipientList.objects.get()
    form = {"name": "MMS", "lists": [lst.pk], "body": "Hi", "media_urls": url, "timezone": "UTC"}
    response = admin_client.post(reverse("campaign_new"), form)
    assert response.status_code == 400 and "Media URL #1" in response.content.decode()
    response = api.post("/api/v1/campaigns", {**form, "media_urls": [url]}, format="json")
    assert response.status_code == 400 and "Media URL #1" in json.dumps(response.json())
    sent = api.post("/api/v1/messages/send", {"to": "+14152000000", "body": "Hi", "media_urls": [url]}, format="json")
    assert sent.status_code == 400 and "Media URL #1" in json.dumps(sent.json())
    assert not Campaign.objects.exists() and not Message.objects.exists()


# --- Password reset ----------------------------------------------------------------------------------


def test_password_reset_is_switched_off_with_a_clear_page_when_no_email_is_configured(client, settings, alice):
    settings.PASSWORD_RESET_ENABLED = False
    for response in (
        client.get("/accounts/password/reset/"),
        client.post("/accounts/password/reset/", {"email": alice.email}),
    ):
        assert response.status_code == 200
        assert "Password reset is not available" in response.content.decode()
    assert mail.outbox == []


def test_password_reset_sends_mail_when_email_is_configured(client, settings, alice):
    settings.PASSWORD_RESET_ENABLED = True
    response = client.post("/accounts/password/reset/", {"email": alice.email})
    assert response.status_code == 302
    assert len(mail.outbox) == 1 and alice.email in mail.outbox[0].to


def test_an_unreachable_mail_server_is_not_a_500(client, settings, alice):
    settings.PASSWORD_RESET_ENABLED = True
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 9, 2  # discard: refused
    response = client.post("/accounts/password/reset/", {"email": alice.email})
    assert response.status_code == 302


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, {"EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend", "PASSWORD_RESET_ENABLED": True}),
        ({"PRODUCTION": "1"}, {"PASSWORD_RESET_ENABLED": False}),
        (
            {"PRODUCTION": "1", "EMAIL_URL": "smtp://me%40x.org:p%2Fw@mail.x.org:2525"},
            {
                "EMAIL_HOST": "mail.x.org",
                "EMAIL_PORT": 2525,
                "EMAIL_HOST_USER": "me@x.org",
                "EMAIL_HOST_PASSWORD": "p/w",
                "EMAIL_USE_TLS": True,
                "PASSWORD_RESET_ENABLED": True,
            },
        ),
        ({"EMAIL_URL": "smtps://mail.x.org"}, {"EMAIL_PORT": 465, "EMAIL_USE_SSL": True, "EMAIL_USE_TLS": False}),
        ({"EMAIL_URL": "file:///tmp/mail"}, {"EMAIL_FILE_PATH": "/tmp/mail"}),
        ({"PRODUCTION": "1", "EMAIL_HOST": "relay.x.org"}, {"EMAIL_HOST": "relay.x.org", "EMAIL_PORT": 587}),
    ],
)
def test_email_is_configured_from_the_environment(monkeypatch, env, expected):
    from smsportal.mail import email_settings

    for name in ("EMAIL_URL", "EMAIL_HOST"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        if name != "PRODUCTION":
            monkeypatch.setenv(name, value)
    got = email_settings(production="PRODUCTION" in env)
    assert {k: got.get(k) for k in expected} == expected


# --- Fuzz: every query parameter and form field of the staff pages ---------------------------------

GET_PARAMS = {
    "dashboard": ["x"],
    "campaign_list": ["status", "page"],
    "campaign_detail": ["status", "q", "after"],
    "recipients:inbox": ["q", "kind", "before"],
    "recipients:list_index": ["x"],
    "recipients:list_detail": ["q", "consent", "page"],
    "recipients:consent_export": ["list"],
    "accounts:audit": ["action", "actor", "target_type", "page"],
    "relay:list": ["status"],
}
POST_FORMS = {
    "campaign_new": ["name", "body", "lists", "senders", "media_urls", "send_at", "timezone", "valid_until"],
    "campaign_preview": ["body", "lists"],
    "recipients:list_create": ["name", "description"],
    "recipients:list_rename": ["name"],
    "recipients:list_add_member": ["phone", "first_name", "last_name"],
    "recipients:recipient_opt_out": ["reason"],
    "recipients:recipient_consent_override": ["reason"],
    "accounts:user_invite": ["email", "role"],
    "accounts:tokens": ["name", "expires_at"],
    "accounts:sender_create": ["user", "number", "provider", "max_mps", "label"],
    "relay:list": ["participant_a", "participant_b", "name_a", "name_b", "expires_in_hours"],
}
NEEDS_PK = {
    "campaign_detail": "campaign",
    "recipients:list_detail": "list",
    "recipients:list_rename": "list",
    "recipients:list_add_member": "list",
    "recipients:recipient_opt_out": "recipient",
    "recipients:recipient_consent_override": "recipient",
}
NASTY = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["\x00", "%00", "-1", "1e999", "9" * 30, "' or 1=1 --", "<script>", "\ud7ff\uffff", " ", "[]"]),
)


@pytest.fixture
def objects(alice, make_recipients, make_campaign):
    from recipients.models import RecipientList

    recipient = make_recipients(1, recipient_list="Members")[0]
    lst = RecipientList.objects.get()
    return {"campaign": make_campaign(alice, lists=[lst]), "list": lst, "recipient": recipient}


def _url(name: str, objects: dict) -> str:
    return reverse(name, kwargs={"pk": objects[NEEDS_PK[name]].pk} if name in NEEDS_PK else {})


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    target=st.sampled_from(sorted(GET_PARAMS)),
    values=st.lists(NASTY, min_size=1, max_size=3),
)
def test_fuzz_query_parameters_never_500(admin_client, objects, target, values):
    params = dict(zip(GET_PARAMS[target], values, strict=False))
    response = admin_client.get(_url(target, objects), params)
    assert response.status_code < 500, (target, params)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    target=st.sampled_from(sorted(POST_FORMS)),
    values=st.lists(NASTY, min_size=1, max_size=8),
)
def test_fuzz_form_fields_never_500(admin_client, objects, target, values):
    data = dict(zip(POST_FORMS[target], values, strict=False))
    response = admin_client.post(_url(target, objects), data)
    assert response.status_code < 500, (target, data)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | NASTY,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(NASTY, children, max_size=3),
    max_leaves=8,
)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(["inbound", "status/1", "status/x"]), body=JSON_VALUES)
def test_fuzz_the_flowroute_webhook_never_500(client, settings, kind, body):
    settings.FLOWROUTE_WEBHOOK_SECRET = secret = "s3cret-flowroute-path"
    payload = {"data": {"attributes": body}} if isinstance(body, dict) else body
    response = client.post(
        f"/webhooks/flowroute/{secret}/{kind}/", json.dumps(payload), content_type="application/json"
    )
    assert response.status_code < 500, (kind, payload)
