"""Flowroute Messages API v2.1: ``POST {FLOWROUTE_API_URL}/v2.1/messages``.

v2.1 wants NANP numbers as 11 digits without ``+``. Flowroute signs nothing,
so each ``dlr_callback`` carries the first ``FLOWROUTE_WEBHOOK_SECRET`` in its
path, plus our own message id.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
from django.conf import settings
from django.urls import reverse

from providers import runtime
from providers.backends.base import BaseBackend, OutboundSMS, SendOutcome
from providers.errors import ConfigurationError, InvalidRecipient, PermanentError
from providers.http_errors import TRANSPORT_ERRORS, provider_error

_NANP = re.compile(r"^\+1\d{10}$")
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
    if not _NANP.match(message.to):
        raise InvalidRecipient("Flowroute v2.1 sends only to North American (+1) numbers")
    if not _NANP.match(message.sender):
        raise PermanentError("Flowroute v2.1 sends only from North American (+1) numbers")
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


def _error_text(response: httpx.Response) -> str:
    try:
        errors = response.json().get("errors") or []
        first = errors[0]
        return str(first.get("detail") or first.get("title") or "")[:255]
    except (ValueError, AttributeError, TypeError, IndexError, KeyError):
        return response.text[:255]


def _message_id(response: httpx.Response) -> str:
    try:
        return str(response.json()["data"]["id"])
    except (ValueError, AttributeError, TypeError, KeyError):
        return ""


class SMSBackend(BaseBackend):
    provider = "flowroute"

    async def send_one(self, message: OutboundSMS) -> SendOutcome:
        key, secret = settings.FLOWROUTE_ACCESS_KEY, settings.FLOWROUTE_SECRET_KEY
        if not key or not secret:
            raise ConfigurationError("Flowroute is not configured: set FLOWROUTE_ACCESS_KEY and FLOWROUTE_SECRET_KEY")
        payload = build_payload(message)
        try:
            response = await runtime.get_client().post(
                f"{settings.FLOWROUTE_API_URL}/v2.1/messages",
                json=payload,
                headers=runtime.auth_headers(key, secret, CONTENT_TYPE),
                timeout=runtime.request_timeout(settings.SMS_HTTP_TIMEOUT),
            )
        except TRANSPORT_ERRORS as exc:
            error = provider_error(exc)
        else:
            error = provider_error(response, detail="" if response.is_success else _error_text(response))
            if error is None:
                return SendOutcome(ref=message.ref, provider=self.provider, provider_message_id=_message_id(response))
        return SendOutcome(ref=message.ref, provider=self.provider, error=error)
