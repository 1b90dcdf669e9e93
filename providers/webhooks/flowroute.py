"""Flowroute delivery receipts and inbound messages.

Flowroute signs nothing, so its callback URLs carry ``FLOWROUTE_WEBHOOK_SECRET``
in the path (compared in constant time; a comma-separated list allows rotation).
"""

from __future__ import annotations

import re
from typing import Any

from django.http import HttpRequest
from django.utils.dateparse import parse_datetime

from providers.backends.flowroute import webhook_secrets
from providers.events import record_inbound, record_status_events
from providers.status import DeliveryStatus, InboundSMS, StatusEvent
from providers.webhooks.base import MalformedWebhook, SecretInPathMixin, WebhookView, inbound_seen, json_body

PROVIDER = "flowroute"
# The full list of DLR statuses is undocumented: unknown words count as "sent"
# (never final) unless they clearly say the message failed. The raw event is kept.
STATUSES = {
    "smsc submit": DeliveryStatus.SENT,
    "message buffered": DeliveryStatus.SENT,
    "delivered": DeliveryStatus.DELIVERED,
    "undeliverable": DeliveryStatus.UNDELIVERED,
    "undelivered": DeliveryStatus.UNDELIVERED,
    "expired": DeliveryStatus.UNDELIVERED,
    "failed": DeliveryStatus.FAILED,
    "rejected": DeliveryStatus.FAILED,
}
_UNDELIVERED_WORDS = re.compile(r"undeliver|expire|not delivered", re.IGNORECASE)
_FAILED_WORDS = re.compile(r"fail|reject|error|invalid|block", re.IGNORECASE)


def map_status(raw: str) -> DeliveryStatus:
    word = " ".join(raw.lower().split())
    if word in STATUSES:
        return STATUSES[word]
    if _UNDELIVERED_WORDS.search(word):
        return DeliveryStatus.UNDELIVERED
    if _FAILED_WORDS.search(word):
        return DeliveryStatus.FAILED
    return DeliveryStatus.SENT


def _attributes(body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    data = body.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("attributes"), dict):
        raise MalformedWebhook("no data.attributes object")
    return data, data["attributes"]


def _e164(value: Any) -> str:
    digits = str(value or "").strip()
    if len(digits) == 10 and digits.isdigit():  # a NANP number without its country code
        digits = "1" + digits
    return digits if digits.startswith("+") or not digits.isdigit() else "+" + digits


class FlowrouteSecretMixin(SecretInPathMixin):
    def secrets(self) -> list[str]:
        return webhook_secrets()


class StatusWebhookView(FlowrouteSecretMixin, WebhookView):
    """``POST /webhooks/flowroute/<secret>/status/<ref>/``: one delivery receipt."""

    provider = PROVIDER

    def handle(self, request: HttpRequest, **kwargs: Any) -> None:
        body = json_body(request)
        data, attrs = _attributes(body)
        raw_status = attrs.get("status")
        if not isinstance(raw_status, str) or not raw_status.strip():
            raise MalformedWebhook("no data.attributes.status")
        status = map_status(raw_status)
        failed = status in (DeliveryStatus.UNDELIVERED, DeliveryStatus.FAILED)
        timestamp = attrs.get("timestamp")
        try:
            occurred = parse_datetime(timestamp) if isinstance(timestamp, str) else None
        except ValueError:
            occurred = None
        event = StatusEvent(
            provider=PROVIDER,
            message_ref=kwargs["ref"],
            status=status,
            provider_message_id=str(data.get("id") or ""),
            error_code=str(attrs.get("status_code") or "") if failed else "",
            error_text=str(attrs.get("status_code_description") or raw_status) if failed else "",
            occurred_at=occurred,
            raw=body,
        )
        record_status_events(events=[event])


def parse_inbound(body: dict[str, Any]) -> InboundSMS:
    data, attrs = _attributes(body)
    sender, to = attrs.get("from"), attrs.get("to")
    if not sender or not to:
        raise MalformedWebhook("from and to are required")
    text = attrs.get("body") or ""
    if not isinstance(text, str):
        raise MalformedWebhook("body is not a string")
    media = []
    for item in body.get("included") or []:
        if isinstance(item, dict) and item.get("type") == "media":
            url = (item.get("attributes") or {}).get("url") if isinstance(item.get("attributes"), dict) else None
            if isinstance(url, str) and url:
                media.append(url)
    return InboundSMS(
        provider=PROVIDER,
        sender=_e164(sender),
        to=_e164(to),
        text=text,
        media_urls=tuple(media),
        provider_message_id=str(data.get("id") or ""),
        raw=body,
    )


class InboundWebhookView(FlowrouteSecretMixin, WebhookView):
    """``POST /webhooks/flowroute/<secret>/inbound/``: the number's SMS and MMS callback."""

    provider = PROVIDER

    def handle(self, request: HttpRequest, **kwargs: Any) -> None:
        inbound = parse_inbound(json_body(request))
        if not inbound_seen(provider=PROVIDER, provider_message_id=inbound.provider_message_id):
            record_inbound(inbound=inbound)
