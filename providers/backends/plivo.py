"""Plivo Messages API: ``POST {PLIVO_API_URL}/v1/Account/{auth_id}/Message/``.

Numbers go out as digits with country code (no ``+``). Every send carries a
status-callback ``url`` naming our own message, so a report settles the
message even when the send's answer was lost.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Any
from urllib.parse import quote

import httpx
from django.conf import settings
from django.urls import reverse

from providers import runtime
from providers.backends.base import BaseBackend, OutboundSMS, SendOutcome
from providers.errors import ConfigurationError, PermanentError
from providers.http_errors import TRANSPORT_ERRORS, provider_error

logger = logging.getLogger(__name__)
MAX_MEDIA = 10
MAX_TEXT = 1600


@lru_cache(maxsize=8)
def _status_path_template(urlconf_marker: str) -> str:
    # reverse() costs more than the rest of the payload; do it once per process.
    return reverse("webhooks:plivo-status", kwargs={"ref": urlconf_marker})


def status_callback_url(ref: str) -> str:
    return settings.PUBLIC_BASE_URL + _status_path_template("__ref__").replace("__ref__", quote(ref, safe=""))


def build_payload(message: OutboundSMS) -> dict[str, Any]:
    """The JSON body for one message; raises :class:`PermanentError` for what Plivo would refuse."""
    if len(message.media_urls) > MAX_MEDIA:
        raise PermanentError(f"Plivo accepts at most {MAX_MEDIA} media URLs, got {len(message.media_urls)}")
    if len(message.body) > MAX_TEXT:
        raise PermanentError(f"Plivo accepts at most {MAX_TEXT} characters, got {len(message.body)}")
    payload: dict[str, Any] = {
        "src": message.sender.lstrip("+"),
        "dst": message.to.lstrip("+"),
        "text": message.body,
        "url": status_callback_url(message.ref),
        "method": "POST",
    }
    if message.is_mms:
        payload["type"] = "mms"
        payload["media_urls"] = list(message.media_urls)
    return payload


def _error_text(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:255]
    if isinstance(body, dict):
        return str(body.get("error") or body.get("message") or "")[:255]
    return ""


def _message_uuid(response: httpx.Response) -> str:
    try:
        uuids = response.json().get("message_uuid")
        return str(uuids[0]) if uuids else ""
    except (ValueError, AttributeError, TypeError, IndexError, KeyError):
        return ""


class SMSBackend(BaseBackend):
    provider = "plivo"

    async def send_one(self, message: OutboundSMS) -> SendOutcome:
        auth_id, token = settings.PLIVO_AUTH_ID, settings.PLIVO_AUTH_TOKEN
        if not auth_id or not token:
            raise ConfigurationError("Plivo is not configured: set PLIVO_AUTH_ID and PLIVO_AUTH_TOKEN")
        payload = build_payload(message)
        url = f"{settings.PLIVO_API_URL}/v1/Account/{auth_id}/Message/"
        try:
            response = await runtime.get_client().post(
                url,
                json=payload,
                headers=runtime.auth_headers(auth_id, token),
                timeout=runtime.request_timeout(settings.SMS_HTTP_TIMEOUT),
            )
        except TRANSPORT_ERRORS as exc:
            error = provider_error(exc)
        else:
            error = provider_error(response, detail="" if response.is_success else _error_text(response))
            if error is None:
                uuid = _message_uuid(response)
                if not uuid:
                    # Accepted all the same: the callback URL carries our ref and settles it.
                    logger.warning("plivo accepted message %s without a message_uuid", message.ref)
                return SendOutcome(ref=message.ref, provider=self.provider, provider_message_id=uuid)
        return SendOutcome(ref=message.ref, provider=self.provider, error=error)
