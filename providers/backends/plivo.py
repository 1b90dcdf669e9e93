"""Plivo Messages API: ``POST {PLIVO_API_URL}/v1/Account/{auth_id}/Message/``.

Numbers go out as digits with country code (no ``+``). Every send carries a
status-callback ``url`` naming our own message (behind the first
``PLIVO_WEBHOOK_SECRET`` in its path), so a report settles the message even
when the send's answer was lost. Limits (1,600 characters, 10
media) are in its :mod:`providers.registry` entry.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any
from urllib.parse import quote

import httpx
from django.conf import settings
from django.urls import reverse

from providers.backends.base import OutboundSMS, ProviderBackend
from providers.errors import ConfigurationError, InvalidRecipient, OutcomeUnknown, ProviderError
from providers.refs import group_ref


def webhook_secrets() -> list[str]:
    """Accepted URL secrets, newest first; a comma-separated setting allows rotation."""
    return [s.strip() for s in (settings.PLIVO_WEBHOOK_SECRET or "").split(",") if s.strip()]


@lru_cache(maxsize=8)
def _status_path_template(secret: str, urlconf_marker: str) -> str:
    # reverse() costs more than the rest of the payload; do it once per process (and secret).
    return reverse("webhooks:plivo-status", kwargs={"secret": secret, "ref": urlconf_marker})


def status_callback_url(ref: str) -> str:
    secrets = webhook_secrets()
    if not secrets:
        raise ConfigurationError("PLIVO_WEBHOOK_SECRET is not set: delivery reports could not be authenticated")
    template = _status_path_template(secrets[0], "__ref__")
    return settings.PUBLIC_BASE_URL + template.replace("__ref__", quote(ref, safe=""))


def build_payload(message: OutboundSMS) -> dict[str, Any]:
    """The JSON body for one message (the registry's limits are checked before)."""
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


def build_group_payload(messages: Sequence[OutboundSMS]) -> dict[str, Any]:
    """One body for messages of identical content: ``dst`` joined with ``<``, and one callback URL
    naming the group (each report's ``To`` picks its message: :mod:`providers.refs`)."""
    payload = build_payload(messages[0])
    payload["dst"] = "<".join(m.to.lstrip("+") for m in messages)
    payload["url"] = status_callback_url(group_ref(m.ref for m in messages))
    return payload


def group_message_ids(response: httpx.Response, messages: Sequence[OutboundSMS]) -> dict[str, str | ProviderError]:
    """Plivo answers one uuid per destination, in ``dst`` order, and lists refused numbers apart
    (``invalid_number``). Uuids are matched to destinations only when their count fits exactly;
    otherwise the messages are left to their delivery reports (outcome unknown), never guessed."""
    try:
        body = response.json()
        uuids = [str(u) for u in body.get("message_uuid") or []]
        invalid = body.get("invalid_number") or []
        invalid = {str(n).lstrip("+") for n in ([invalid] if isinstance(invalid, str) else invalid)}
    except (ValueError, AttributeError, TypeError):
        uuids, invalid = [], set()
    out: dict[str, str | ProviderError] = {}
    valid = []
    for m in messages:
        if m.to.lstrip("+") in invalid:
            out[m.ref] = InvalidRecipient("Plivo listed the number as invalid (invalid_number)")
        else:
            valid.append(m)
    if len(uuids) == len(valid):
        out.update((m.ref, uuid) for m, uuid in zip(valid, uuids, strict=True))
    else:
        unmatched = OutcomeUnknown(f"accepted with {len(uuids)} ids for {len(valid)} destinations", code="partial")
        out.update((m.ref, unmatched) for m in valid)
    return out


def _message_uuid(response: httpx.Response) -> str:
    try:
        uuids = response.json().get("message_uuid")
        return str(uuids[0]) if uuids else ""
    except (ValueError, AttributeError, TypeError, IndexError, KeyError):
        return ""


class SMSBackend(ProviderBackend):
    provider = "plivo"

    def credentials(self) -> tuple[str, str]:
        auth_id, token = settings.PLIVO_AUTH_ID, settings.PLIVO_AUTH_TOKEN
        if not auth_id or not token:
            raise ConfigurationError("Plivo is not configured: set PLIVO_AUTH_ID and PLIVO_AUTH_TOKEN")
        return auth_id, token

    def endpoint(self, user: str) -> str:
        return f"{settings.PLIVO_API_URL}/v1/Account/{user}/Message/"

    def build_payload(self, message: OutboundSMS) -> dict[str, Any]:
        return build_payload(message)

    def message_id(self, response: httpx.Response) -> str:
        return _message_uuid(response)

    def build_group_payload(self, messages: Sequence[OutboundSMS]) -> dict[str, Any]:
        return build_group_payload(messages)

    def group_message_ids(
        self, response: httpx.Response, messages: Sequence[OutboundSMS]
    ) -> dict[str, str | ProviderError]:
        return group_message_ids(response, messages)
