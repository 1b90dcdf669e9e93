"""Plivo status callbacks and inbound messages, validated with X-Plivo-Signature-V3 or V2.

Plivo signs the URL it called. Behind a proxy the Host header is ours, not
Plivo's, so the URL is rebuilt from ``PUBLIC_BASE_URL`` and the request path.

Every URL carries ``PLIVO_WEBHOOK_SECRET`` in its path, checked first. V3
signs the URL and the body and is used whenever present. V2 signs only the URL
and nonce, never the body: a V2-only request is accepted once per nonce (a
replay store in Redis, see :mod:`providers.webhooks.replay`), and only on a URL
that carries the secret, so a captured V2 header cannot carry a forged body.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest
from django.urls import path, reverse

from providers.backends.plivo import webhook_secrets
from providers.events import Alongside
from providers.signatures import plivo_v2_valid, plivo_v3_valid
from providers.status import DeliveryStatus, InboundSMS, StatusEvent, micros
from providers.webhooks.base import (
    InboundView,
    MalformedWebhook,
    SecretInPathMixin,
    StatusView,
    WebhookAuthError,
    e164,
    form_params,
)
from providers.webhooks.base import map_status as _map_status
from providers.webhooks.replay import first_use, spend_alongside

PROVIDER = "plivo"
CURRENCY = "USD"  # Plivo bills in US dollars; its callbacks carry amounts without a currency
STATUSES = {
    "queued": DeliveryStatus.QUEUED,
    "sent": DeliveryStatus.SENT,
    "delivered": DeliveryStatus.DELIVERED,
    "undelivered": DeliveryStatus.UNDELIVERED,
    "failed": DeliveryStatus.FAILED,
    "rejected": DeliveryStatus.FAILED,
}
_MEDIA_KEY = re.compile(r"^Media(\d+)$")


def map_status(raw: str) -> DeliveryStatus:
    """Plivo's word as a normalized status; an unknown word is taken as ``sent`` (never final)."""
    return _map_status(raw, STATUSES)


def parse_time(value: str) -> datetime | None:
    """Plivo times look like ``2026-01-02 03:04:05.123456`` (UTC), or without the fraction."""
    value = value.strip()
    # That exact shape is read by slicing (strptime cost more than the rest of the parse); anything else
    # goes to strptime, whose rules are the ones that count (single-digit fields, other whitespace, ...).
    n = len(value)
    if (n == 19 or 21 <= n <= 26) and value.isascii() and _PLIVO_TIME.fullmatch(value):
        try:
            return datetime(
                int(value[0:4]),
                int(value[5:7]),
                int(value[8:10]),
                int(value[11:13]),
                int(value[14:16]),
                int(value[17:19]),
                int(value[20:].ljust(6, "0")) if n > 19 else 0,
                tzinfo=UTC,
            )
        except ValueError:
            return None
    # one strptime, not a failed one first: most callbacks carry whole seconds
    fmt = "%Y-%m-%d %H:%M:%S.%f" if "." in value else "%Y-%m-%d %H:%M:%S"
    try:
        return datetime.strptime(value, fmt).replace(tzinfo=UTC)
    except ValueError:
        return None


_PLIVO_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?")


def _one(params: Mapping[str, str | list[str]], key: str) -> str:
    value = params.get(key, "")
    return value[-1] if isinstance(value, list) else value


class PlivoSignatureMixin(SecretInPathMixin):
    """The URL secret first (the base class); then a valid V3 signature, or else a V2 one seen for the first time.

    A V2 signature counts only on requests that carry no V3 signature at all.
    """

    write_alongside: Callable[[Alongside], None]  # WebhookView's: a write sent with the view's own work

    def secrets(self) -> list[str]:
        return webhook_secrets()

    def validate_request(self, request: HttpRequest, **kwargs: Any) -> None:
        token = settings.PLIVO_AUTH_TOKEN
        if not token:
            raise WebhookAuthError("PLIVO_AUTH_TOKEN is not set: cannot validate Plivo signatures")
        url = settings.PUBLIC_BASE_URL + request.get_full_path_info()
        # META rather than request.headers: building that mapping of every header cost more than the HMAC.
        meta = request.META
        v3 = _joined(meta, _V3, _V3_MA)
        if v3:
            nonce = meta.get(_V3_NONCE, "")
            params = form_params(request) if request.method == "POST" else {}
            if plivo_v3_valid(
                method=request.method or "POST", url=url, nonce=nonce, signatures=v3, auth_token=token, params=params
            ):
                # Spend the V2 nonce sent beside it: else that header, captured and stripped of V3,
                # would pass as a first-seen V2 request carrying any body.
                self._spend_v2_nonce(url=url, token=token, meta=meta)
                return
            # V2 signs only the URL: never let it rescue a request whose body-covering V3 failed.
            raise WebhookAuthError("invalid Plivo V3 signature")
        v2 = _joined(meta, _V2, _V2_MA)
        if v2:
            nonce = meta.get(_V2_NONCE, "")
            if plivo_v2_valid(url=url, nonce=nonce, signatures=v2, auth_token=token):
                # V2 signs no body: a replayed header could carry any body, so each nonce counts once.
                if not first_use(scope="plivo-v2", nonce=nonce, ttl=settings.WEBHOOK_NONCE_TTL_SECONDS):
                    raise WebhookAuthError("replayed Plivo V2 signature (nonce already used)")
                return
        raise WebhookAuthError("missing or invalid Plivo signature" if v3 or v2 else "unsigned request")

    def _spend_v2_nonce(self, *, url: str, token: str, meta: Mapping[str, Any]) -> None:
        v2 = _joined(meta, _V2, _V2_MA)
        nonce = meta.get(_V2_NONCE, "")
        if v2 and plivo_v2_valid(url=url, nonce=nonce, signatures=v2, auth_token=token):
            # V3 needs no Redis: the SET goes out with the report's INSERT (one write per shared flush) and
            # its answer is read after it; if the store cannot answer, the V3 request is still accepted.
            self.write_alongside(spend_alongside(scope="plivo-v2", nonce=nonce, ttl=settings.WEBHOOK_NONCE_TTL_SECONDS))


# Plivo's signature headers as WSGI names them in META (X-Plivo-Signature-V3 -> HTTP_X_PLIVO_SIGNATURE_V3).
_V3, _V3_MA, _V3_NONCE = "HTTP_X_PLIVO_SIGNATURE_V3", "HTTP_X_PLIVO_SIGNATURE_MA_V3", "HTTP_X_PLIVO_SIGNATURE_V3_NONCE"
_V2, _V2_MA, _V2_NONCE = "HTTP_X_PLIVO_SIGNATURE_V2", "HTTP_X_PLIVO_SIGNATURE_MA_V2", "HTTP_X_PLIVO_SIGNATURE_V2_NONCE"


def _joined(meta: Mapping[str, Any], *keys: str) -> str:
    """The signatures of the headers ``keys`` (main and Ma account), comma-separated; "" if none."""
    return ",".join(value for key in keys if (value := meta.get(key)))


class StatusWebhookView(PlivoSignatureMixin, StatusView):
    """``POST /webhooks/plivo/<secret>/status/<ref>/``: one delivery report (one per part of a long message)."""

    provider = PROVIDER

    def parse_status(self, request: HttpRequest, *, ref: str) -> StatusEvent:
        return parse_status(form_params(request), ref=ref)

    def report_destination(self, request: HttpRequest) -> str:
        to = _one(form_params(request), "To")
        if not to:
            raise MalformedWebhook("no To field")
        return e164(to)


def parse_status(params: dict[str, Any], *, ref: str) -> StatusEvent:
    raw_status = _one(params, "Status")
    if not raw_status:
        raise MalformedWebhook("no Status field")
    status = map_status(raw_status)
    code = _one(params, "ErrorCode").strip()
    if code.strip("0") == "":  # "000" is Plivo's "success"
        code = ""
    # Parts of a long message report under their own uuid; the parent is what the send returned.
    message_id = _one(params, "ParentMessageUUID") or _one(params, "MessageUUID")
    occurred = parse_time(_one(params, "DeliveryReportTime") or _one(params, "SentTime") or "")
    # TotalAmount is the charge for the message (Units x TotalRate); blank or junk means "not priced".
    amount = _one(params, "TotalAmount")
    cost = micros(amount) if amount.strip() else None
    return StatusEvent(
        provider=PROVIDER,
        message_ref=ref,
        status=status,
        provider_message_id=message_id,
        error_code=code,
        error_text=f"{raw_status} (Plivo error {code})" if code else "",
        occurred_at=occurred,
        raw=params,
        cost_micros=cost,
        cost_currency=CURRENCY if cost is not None else "",
    )


def parse_inbound(params: dict[str, Any]) -> InboundSMS:
    sender, to = _one(params, "From"), _one(params, "To")
    if not sender or not to:
        raise MalformedWebhook("From and To are required")
    is_mms = _one(params, "Type").lower() == "mms"
    text = _one(params, "Body") if is_mms else _one(params, "Text")
    text = text or _one(params, "Text") or _one(params, "Body")
    media = sorted(
        ((int(m.group(1)), _one(params, key)) for key in params if (m := _MEDIA_KEY.match(key))),
        key=lambda item: item[0],
    )
    return InboundSMS(
        provider=PROVIDER,
        sender=e164(sender),
        to=e164(to),
        text=text,
        media_urls=tuple(url for _, url in media if url),
        provider_message_id=_one(params, "MessageUUID"),
        raw=params,
    )


class InboundWebhookView(PlivoSignatureMixin, InboundView):
    """``POST /webhooks/plivo/<secret>/inbound/``: the Plivo application's message URL."""

    provider = PROVIDER

    def parse_inbound(self, request: HttpRequest) -> InboundSMS:
        return parse_inbound(form_params(request))


def inbound_url() -> str:
    """What to set as the Plivo application's message URL (it carries the newest webhook secret)."""
    secrets = webhook_secrets()
    if not secrets:
        raise ImproperlyConfigured("PLIVO_WEBHOOK_SECRET is not set")
    return settings.PUBLIC_BASE_URL + reverse("webhooks:plivo-inbound", kwargs={"secret": secrets[0]})


# Served under /webhooks/plivo/. The old paths without the secret are gone (404).
urlpatterns = [
    path("<str:secret>/status/<str:ref>/", StatusWebhookView.as_view(), name="plivo-status"),
    path("<str:secret>/inbound/", InboundWebhookView.as_view(), name="plivo-inbound"),
]
