"""Fixtures for provider tests: backends aimed at the fake provider, signing helpers, messages."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from devtools.fake_provider.plivo import plivo_signature_headers
from providers.backends.base import OutboundSMS

PLIVO_TOKEN = "fake-plivo-auth-token"
PLIVO_SECRET = "s3cret-plivo-path"  # PLIVO_WEBHOOK_SECRET, in the callback URLs


@pytest.fixture
def fake(fake_provider, settings):
    """The fake provider, with both backends' settings pointing at it and callbacks off."""
    cfg = fake_provider.config
    settings.PLIVO_API_URL = fake_provider.url
    settings.PLIVO_AUTH_ID = cfg.plivo_auth_id
    settings.PLIVO_AUTH_TOKEN = cfg.plivo_auth_token
    settings.PLIVO_WEBHOOK_SECRET = PLIVO_SECRET
    settings.FLOWROUTE_API_URL = fake_provider.url
    settings.FLOWROUTE_ACCESS_KEY = cfg.flowroute_access_key
    settings.FLOWROUTE_SECRET_KEY = cfg.flowroute_secret_key
    settings.FLOWROUTE_WEBHOOK_SECRET = "s3cret-flowroute-path"
    settings.PUBLIC_BASE_URL = "https://sms.example.com"
    fake_provider.configure(callbacks=False)
    return fake_provider


def sms(ref: str = "1", to: str = "+14155552671", body: str = "Hello", provider: str = "plivo", **kw) -> OutboundSMS:
    return OutboundSMS(ref=ref, to=to, sender=kw.pop("sender", "+14155550100"), body=body, provider=provider, **kw)


def signed_plivo_post(
    client, path: str, params: dict, *, token: str = PLIVO_TOKEN, base: str = "https://sms.example.com"
):
    """POST ``params`` as Plivo would, signed (by the fake provider's own signer) for ``base + path``."""
    headers = plivo_signature_headers("POST", base + path, params, token)
    return client.post(
        path,
        data=urlencode(params),
        content_type="application/x-www-form-urlencoded",
        headers=headers,
    )
