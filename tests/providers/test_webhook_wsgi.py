"""The webhook WSGI app behind ``smsportal.wsgi.application``: same checks, less middleware, public API only."""

from __future__ import annotations

import io
from urllib.parse import urlencode

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.urls import Resolver404, resolve, reverse

from providers.fake import plivo_signature_headers
from providers.models import ProviderEvent
from providers.webhooks import urls
from providers.webhooks.wsgi import PREFIX, URLCONF, WebhookApplication, WebhookRouter, webhook_middleware
from tests.providers.conftest import PLIVO_TOKEN

pytestmark = pytest.mark.django_db
BASE = "https://sms.example.com"
PATH = "/webhooks/plivo/status/42/"
PARAMS = {
    "MessageUUID": "uuid-part",
    "ParentMessageUUID": "uuid-parent",
    "Status": "delivered",
    "ErrorCode": "000",
    "DeliveryReportTime": "2026-03-01 12:00:01.123456",
}


@pytest.fixture(autouse=True)
def webhook_settings(settings):
    settings.PLIVO_AUTH_TOKEN = PLIVO_TOKEN
    settings.PUBLIC_BASE_URL = BASE
    settings.ALLOWED_HOSTS = ["testserver"]


@pytest.fixture
def app():
    """The production WSGI app, called directly; like Django's test client, keep the test's transaction open."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        from smsportal.wsgi import application

        yield application
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def call(
    app,
    path: str,
    *,
    body: bytes = b"",
    headers: dict | None = None,
    host: str = "testserver",
    content_type: str = "application/x-www-form-urlencoded",
    close: bool = False,
):
    """One POST through ``app``; ``close`` calls the iterable's ``close()`` afterwards, as a WSGI server does."""
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "HTTP_HOST": host,
        "CONTENT_TYPE": content_type,
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": "http",
    }
    for name, value in (headers or {}).items():
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    seen: dict = {}

    def start_response(status, response_headers, exc_info=None):
        seen["status"] = int(status.split()[0])
        seen["headers"] = dict(response_headers)

    result = app(environ, start_response)
    seen["body"] = b"".join(result)
    seen["result"] = result
    if close:
        result.close()
    return seen


def signed(params: dict, path: str = PATH, token: str = PLIVO_TOKEN) -> tuple[bytes, dict]:
    return urlencode(params).encode(), plivo_signature_headers("POST", BASE + path, params, token)


def test_production_app_routes_webhooks_to_the_webhook_app(app):
    assert isinstance(app, WebhookRouter)
    assert isinstance(app.webhooks, WebhookApplication)
    assert app.webhooks.urlconf == URLCONF == "smsportal.webhook_urls"
    assert webhook_middleware() == [
        "django.middleware.security.SecurityMiddleware",
        "django.middleware.common.CommonMiddleware",
    ]


def test_signed_status_is_stored_before_the_200_without_session_or_csrf_cookies(app):
    body, headers = signed(PARAMS)
    response = call(app, PATH, body=body, headers=headers)
    assert response["status"] == 200, response
    assert "Set-Cookie" not in response["headers"]
    assert response["headers"]["X-Content-Type-Options"] == "nosniff"  # SecurityMiddleware still runs
    event = ProviderEvent.objects.get()
    assert (event.provider, event.kind, event.message_ref, event.status) == ("plivo", "status", "42", "delivered")
    assert event.provider_message_id == "uuid-parent"
    assert event.error_code == ""
    assert event.payload == PARAMS
    assert event.received_at is not None and event.processed_at is None
    assert event.occurred_at.isoformat() == "2026-03-01T12:00:01.123456+00:00"


@pytest.mark.parametrize("token", ["wrong-token", None])
def test_forged_or_unsigned_status_is_refused_and_not_stored(app, token):
    body, headers = signed(PARAMS, token=token or PLIVO_TOKEN)
    if token is None:
        headers = {}
    response = call(app, PATH, body=body, headers=headers)
    assert response["status"] == 403
    assert not ProviderEvent.objects.exists()


def test_tampered_body_is_refused(app):
    body, headers = signed(PARAMS)
    # V2 signs only the URL, so a body change can only be caught with V3 alone.
    headers = {k: v for k, v in headers.items() if "V2" not in k}
    response = call(app, PATH, body=body.replace(b"delivered", b"failed"), headers=headers)
    assert response["status"] == 403
    assert not ProviderEvent.objects.exists()


def test_host_outside_allowed_hosts_is_refused(app):
    body, headers = signed(PARAMS)
    response = call(app, PATH, body=body, headers=headers, host="evil.example.net")
    assert response["status"] == 400
    assert not ProviderEvent.objects.exists()


def test_only_webhook_urls_are_served_on_the_lean_path(app):
    with pytest.raises(Resolver404):
        resolve("/accounts/login/", urlconf=URLCONF)
    assert resolve(PATH, urlconf=URLCONF).namespaces == ["webhooks"]
    # portal pages handed to the webhook app itself; "/admin" is not redirected to the portal's "/admin/"
    for path in ("/accounts/login/", "/admin/", "/admin", "/api/v1/campaigns/"):
        assert call(app.webhooks, path)["status"] == 404, path


def test_the_webhook_urlconf_may_hold_nothing_but_the_webhooks():
    with pytest.raises(ImproperlyConfigured, match="only include the 'webhooks' namespace"):
        WebhookApplication(urlconf="smsportal.urls")


def test_portal_and_webhook_app_serve_every_webhook_at_the_same_path_with_the_same_view():
    assert urls.urlpatterns
    for pattern in urls.urlpatterns:
        path = reverse(f"webhooks:{pattern.name}", kwargs=dict.fromkeys(pattern.pattern.converters, "x"))
        assert path.startswith(PREFIX)
        assert resolve(path).func is resolve(path, urlconf=URLCONF).func is pattern.callback


def test_unknown_path_under_the_prefix_is_a_404_not_a_500(app):
    assert call(app, "/webhooks/nothing-here/")["status"] == 404


def test_portal_pages_still_get_the_full_middleware(app):
    response = call(app, "/accounts/login/")  # a POST without a CSRF token: the full stack refuses it
    assert response["status"] == 403


def test_a_urlconf_without_the_webhooks_passes_everything_through(settings):
    settings.ROOT_URLCONF = "bench.ceiling_urls"  # bare project: its own /webhooks/ view, no namespace
    seen = []
    router = WebhookRouter(lambda environ, start_response: seen.append(environ["PATH_INFO"]) or [b"ok"])
    assert router.webhooks is None
    assert list(router({"PATH_INFO": PATH}, None)) == [b"ok"]
    assert seen == [PATH]
