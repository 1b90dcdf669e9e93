"""Flowroute Messages API v2.1: ``POST {FLOWROUTE_API_URL}/v2.1/messages``.

v2.1 wants NANP numbers as 11 digits without ``+`` (the registry entry says
``nanp_only``, so other numbers are refused before this module sees them).
Flowroute signs nothing, so each ``dlr_callback`` carries the first
``FLOWROUTE_WEBHOOK_SECRET`` in its path, plus our own message id.
"""

from __future__ import annotations

from typing import Any

import httpx
from django.conf import settings
from django.urls import reverse

from providers.backends.base import OutboundSMS, ProviderBackend
from providers.errors import ConfigurationError

CONTENT_TYPE = "application/vnd.api+json"


def webhook_secrets() -> list[str]:
    """Accepted secrets, newest first; a comma-separated setting allows rotation."""
    return [s.strip() for s in (settings.FLOWROUTE_WEBHOOK_SECRET or "").split(",") if s.strip()]


def status_callback_url(ref: str) -> str:
    secrets = webhook_secrets()
    if not secrets:
        raise ConfigurationError("FLOWROUTE_WEBHOOK_SECRET is not set: delivery reports could not be authenticated")
    path = reverse("webhooks:flowroute-status", kwargs={"secret": secrets[0], "ref": ref})
    return settings.PUBLIC_BASE_URL + path


def build_payload(message: OutboundSMS) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "from": message.sender[1:],
        "to": message.to[1:],
        "body": message.body,
        "dlr_callback": status_callback_url(message.ref),
    }
    if message.is_mms:
        payload["is_mms"] = True
        payload["media_urls"] = list(message.media_urls)
    return payload


def _message_id(response: httpx.Response) -> str:
    try:
        return str(response.json()["data"]["id"])
    except (ValueError, AttributeError, TypeError, KeyError):
        return ""


class SMSBackend(ProviderBackend):
    provider = "flowroute"
    content_type = CONTENT_TYPE

    def credentials(self) -> tuple[str, str]:
        key, secret = settings.FLOWROUTE_ACCESS_KEY, settings.FLOWROUTE_SECRET_KEY
        if not key or not secret:
            raise ConfigurationError("Flowroute is not configured: set FLOWROUTE_ACCESS_KEY and FLOWROUTE_SECRET_KEY")
        return key, secret

    def endpoint(self, user: str) -> str:
        return f"{settings.FLOWROUTE_API_URL}/v2.1/messages"

    def build_payload(self, message: OutboundSMS) -> dict[str, Any]:
        return build_payload(message)

    def message_id(self, response: httpx.Response) -> str:
        return _message_id(response)


def fetch_price_nanodollars(provider_message_id: str) -> Any:
    """``amount_nanodollars`` from the message's record (``GET /v2.1/messages/{id}``); None if unavailable.

    Flowroute documents the price on message records, not on delivery receipts.
    """
    key, secret = settings.FLOWROUTE_ACCESS_KEY, settings.FLOWROUTE_SECRET_KEY
    if not key or not secret or not provider_message_id.startswith("mdr"):
        return None
    url = f"{settings.FLOWROUTE_API_URL}/v2.1/messages/{provider_message_id}"
    response = httpx.get(url, auth=(key, secret), headers={"Accept": CONTENT_TYPE}, timeout=settings.SMS_HTTP_TIMEOUT)
    if response.status_code != 200:
        return None
    try:
        return response.json()["data"]["attributes"].get("amount_nanodollars")
    except (ValueError, AttributeError, TypeError, KeyError):
        return None
