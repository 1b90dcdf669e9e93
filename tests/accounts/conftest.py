"""Fixtures for accounts tests: a loopback OpenID Connect provider wired into allauth."""

from __future__ import annotations

import pytest

from tests.accounts.oidc_provider import OIDCProvider

PROVIDER_ID = "testidp"


@pytest.fixture
def oidc(settings):
    provider = OIDCProvider().start()
    settings.SOCIALACCOUNT_PROVIDERS = {
        "openid_connect": {
            "OAUTH_PKCE_ENABLED": True,
            "APPS": [
                {
                    "provider_id": PROVIDER_ID,
                    "name": "Test IdP",
                    "client_id": provider.client_id,
                    "secret": provider.client_secret,
                    "settings": {"server_url": provider.issuer},
                }
            ],
        }
    }
    yield provider
    provider.stop()
