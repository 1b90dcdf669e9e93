"""Flowroute delivery receipts and inbound messages.

Flowroute signs nothing, so its callback URLs carry ``FLOWROUTE_WEBHOOK_SECRET``
in the path (compared in constant time; a comma-separated list allows rotation).
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.http import HttpRequest
from django.urls import path, reverse
from django.utils.dateparse import parse_datetime

from providers.backends.flowroute import webhook_secrets
from providers.status import FINAL_STATUSES, DeliveryStatus, InboundSMS, StatusEvent
from providers.webhooks.base import InboundView, MalformedWebhook, SecretInPathMixin, StatusView, e164, json_body
from providers.webhooks.base import map_status as _map_status

logger = logging.getLogger(__name__)
PROVIDER = "flowroute"
CURRENCY = "USD"  # amount_nanodollars: billionths of a US dollar
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


def map_status(raw: str) -> DeliveryStatus:
    return _map_status(raw, STATUSES)


def _attributes(body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    data = body.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("attributes"), dict):
        raise MalformedWebhook("no data.attributes object")
    return data, data["attributes"]


def _e164(value: Any) -> str:
    return e164(value, nanp=True)


class FlowrouteSecretMixin(SecretInPathMixin):
    def secrets(self) -> list[str]:
        return webhook_secrets()


class StatusWebhookView(FlowrouteSecretMixin, StatusView):
    """``POST /webhooks/flowroute/<secret>/status/<ref>/``: one delivery receipt."""

    provider = PROVIDER

    def parse_status(self, request: HttpRequest, *, ref: str) -> StatusEvent:
        return parse_status(json_body(request), ref=ref)

    def after_stored(self, event: StatusEvent) -> None:
        if event.status in FINAL_STATUSES and event.cost_micros is None and event.provider_message_id:
            # Receipts carry no price; the message record does.
            args = (event.message_ref, event.provider_message_id, event.status.value)
            transaction.on_commit(lambda: _queue_price(args))


def _queue_price(args: tuple[str, str, str]) -> None:
    from providers.prices import fetch_flowroute_price

    try:
        fetch_flowroute_price.apply_async(args, countdown=5)
    except Exception:  # the broker is down: the message stays unpriced, which the page shows
        logger.warning("could not queue the Flowroute price lookup", exc_info=True)


def parse_status(body: dict[str, Any], *, ref: str) -> StatusEvent:
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
    cost = nanodollars_to_micros(attrs.get("amount_nanodollars"))
    return StatusEvent(
        provider=PROVIDER,
        message_ref=ref,
        status=status,
        cost_micros=cost,
        cost_currency=CURRENCY if cost is not None else "",
        provider_message_id=str(data.get("id") or ""),
        error_code=str(attrs.get("status_code") or "") if failed else "",
        error_text=str(attrs.get("status_code_description") or raw_status) if failed else "",
        occurred_at=occurred,
        raw=body,
    )


def nanodollars_to_micros(value: Any) -> int | None:
    """Flowroute's ``amount_nanodollars`` (message records; receipts do not document it) as micro-dollars.

    Rounded half up; None when absent or not a non-negative whole number.
    """
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if not isinstance(value, int) or value < 0 or value > 10**15:
        return None
    return (value + 500) // 1000


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


class InboundWebhookView(FlowrouteSecretMixin, InboundView):
    """``POST /webhooks/flowroute/<secret>/inbound/``: the number's SMS and MMS callback."""

    provider = PROVIDER

    def parse_inbound(self, request: HttpRequest) -> InboundSMS:
        return parse_inbound(json_body(request))


def inbound_url() -> str:
    """What to set as the Flowroute SMS and MMS callback URL (it carries the newest webhook secret)."""
    secrets = webhook_secrets()
    if not secrets:
        raise ImproperlyConfigured("FLOWROUTE_WEBHOOK_SECRET is not set")
    return settings.PUBLIC_BASE_URL + reverse("webhooks:flowroute-inbound", kwargs={"secret": secrets[0]})


# Served under /webhooks/flowroute/.
urlpatterns = [
    path("<str:secret>/status/<str:ref>/", StatusWebhookView.as_view(), name="flowroute-status"),
    path("<str:secret>/inbound/", InboundWebhookView.as_view(), name="flowroute-inbound"),
]
