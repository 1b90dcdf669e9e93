"""Flowroute's API shape (Messages API v2.1): the send endpoint, delivery receipts, inbound messages.

Facts: /work/shared/reference/providers.md ("Flowroute"). Flowroute documents no webhook
signatures: the application authenticates callbacks by a secret in their URL.
"""

from __future__ import annotations

import dataclasses
import json
import mimetypes
import re
import time
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from messaging.encoding import is_gsm7

from .base import Event, ProviderAPI, Webhook
from .config import ERROR_DESCRIPTIONS, coerced_by, optional_str, rate
from .httputil import JSON, JSONAPI, HTTPError, basic_auth, check_basic_auth, digits, json_response
from .records import Message

FLOWROUTE = "flowroute"

# (level, status, status_code, status_code_description) of Flowroute DLR steps.
FLOWROUTE_SUBMIT = (1, "smsc submit", "1001", "Message submitted to carrier")
FLOWROUTE_BUFFERED = (2, "message buffered", "1003", "Message buffered by carrier")
FLOWROUTE_DELIVERED = (2, "delivered", "1000", "Message delivered to handset")
FLOWROUTE_FAILURE_STATUS = {"undelivered": "undeliverable", "failed": "failed"}

_NANP = re.compile(r"^1\d{10}$")
_JSON_HEADERS = {"Content-Type": JSON}
_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    415: "Unsupported Media Type",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


@dataclasses.dataclass
class FlowrouteConfig:
    flowroute_access_key: str = "fake-access-key"
    flowroute_secret_key: str = "fake-secret-key"
    rate_buffered: float = rate()  # "message buffered" (1003) before delivered
    flowroute_inbound_url: str | None = dataclasses.field(default=None, metadata=coerced_by(optional_str))


def _iso_time(ts: float | None = None) -> str:
    return datetime.fromtimestamp(ts if ts is not None else time.time(), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class FlowrouteAPI(ProviderAPI):
    """``POST /v2.1/messages``, flat or JSON:API body; JSON delivery receipts, unsigned."""

    name = FLOWROUTE

    def configure(self) -> None:
        self._auth = basic_auth(self.config.flowroute_access_key, self.config.flowroute_secret_key)

    def owns(self, path: str) -> bool:
        return path in ("/v2.1/messages", "/v2.1/messages/")

    def authorize(self, request: web.BaseRequest, path: str) -> None:
        c = self.config
        if request.method != "POST":
            raise HTTPError(405, "method not allowed")
        header = request.headers.get("Authorization")
        if not check_basic_auth(header, self._auth, c.flowroute_access_key, c.flowroute_secret_key):
            raise HTTPError(401, "Invalid access key or secret key")

    # -- message records (GET /v2.1/messages/{id}): where Flowroute documents the price ----------

    _RECORD = re.compile(r"^/v2\.1/messages/(mdr2-[0-9a-f]+)$")

    def message_record(self, request: web.BaseRequest, path: str) -> web.Response | None:
        """The message's detail record with ``amount_nanodollars``, as Flowroute documents it; None: not ours."""
        match = self._RECORD.match(path)
        if match is None or request.method != "GET":
            return None
        c = self.config
        if not check_basic_auth(
            request.headers.get("Authorization"), self._auth, c.flowroute_access_key, c.flowroute_secret_key
        ):
            return self.error(401, "Invalid access key or secret key")
        msg = next((m for m in reversed(self.server.state.messages) if m.id == match.group(1)), None)
        if msg is None:
            return self.error(404, "message not found")
        from .plivo import sms_units

        # An assumed price list: $0.0045 per SMS segment, $0.0200 per MMS.
        nanos = 20_000_000 if msg.type == "mms" else 4_500_000 * sms_units(msg.text)
        attributes = {
            "from": msg.src.lstrip("+"),
            "to": msg.dst.lstrip("+"),
            "body": msg.text,
            "direction": "outbound",
            "is_mms": msg.type == "mms",
            "message_type": "longcode",
            "status": msg.outcome,
            "timestamp": _iso_time(msg.received_at),
            "amount_nanodollars": nanos,
            "amount_display": f"${nanos / 1e9:.4f}",
        }
        return json_response(
            {"data": {"type": "message", "id": msg.id, "attributes": attributes}}, 200, content_type=JSONAPI
        )

    def error(self, status: int, detail: str) -> web.Response:
        error = {"id": str(uuid.uuid4()), "status": status, "title": _TITLES.get(status, "Error"), "detail": detail}
        return json_response({"errors": [error]}, status, content_type=JSONAPI)

    async def parse_send(self, request: web.BaseRequest) -> list[Message]:
        if request.content_type not in (JSON, JSONAPI):
            raise HTTPError(415, "Content-Type must be application/vnd.api+json or application/json")
        raw = await request.read()
        try:
            body = json.loads(raw)
        except ValueError:
            raise HTTPError(422, "request body is not valid JSON") from None
        src, dst, text, mtype, media, url = self._validate(body)
        mid = "mdr2-" + uuid.uuid4().hex
        return [Message(FLOWROUTE, mid, src, dst, text, media, mtype, url, "POST", time.time())]

    def _validate(self, body: Any):
        if not isinstance(body, dict):
            raise HTTPError(422, "request body must be a JSON object")
        data = body.get("data")
        if isinstance(data, dict):
            if data.get("type", "message") != "message":
                raise HTTPError(422, "data.type must be 'message'")
            attrs = data.get("attributes")
            if not isinstance(attrs, dict):
                raise HTTPError(422, "data.attributes must be an object")
        else:
            attrs = body
        src = attrs.get("from")
        dst = attrs.get("to")
        for name, value in (("from", src), ("to", dst)):
            if value in (None, ""):
                raise HTTPError(422, f"'{name}' is required")
            if not isinstance(value, str) or not _NANP.match(value):
                raise HTTPError(422, f"'{name}' must be an 11-digit NANP number like 12065551234, got {value!r}")
        text = attrs.get("body")
        if text is None:
            text = ""
        if not isinstance(text, str):
            raise HTTPError(422, "'body' must be a string")
        is_mms = attrs.get("is_mms", False)
        if isinstance(is_mms, str):
            is_mms = is_mms.lower() == "true"
        if not isinstance(is_mms, bool):
            raise HTTPError(422, "'is_mms' must be a boolean")
        media = attrs.get("media_urls")
        if media is not None:
            if not isinstance(media, list) or not all(isinstance(u, str) for u in media):
                raise HTTPError(422, "'media_urls' must be a list of URLs")
            if not media:
                media = None
        if media:
            is_mms = True
        if not text and not is_mms:
            raise HTTPError(422, "'body' is required for an SMS")
        url = attrs.get("dlr_callback") or None
        if url is not None and not (isinstance(url, str) and url.startswith(("http://", "https://"))):
            raise HTTPError(422, "'dlr_callback' must be an http(s) URL")
        return src, dst, text, "mms" if is_mms else "sms", tuple(media) if media else None, url

    def accepted(self, request: web.BaseRequest, msgs: list[Message]) -> web.Response:
        mid = msgs[0].id
        link = f"{request.scheme}://{request.host}/v2.1/messages/{mid}"
        body = {"data": {"id": mid, "type": "message", "links": {"self": link}}}
        return json_response(body, 202, content_type=JSONAPI)

    # -- delivery receipts ------------------------------------------------------------

    def delivery_events(self, msg: Message) -> list[Event]:
        events: list[Event] = [FLOWROUTE_SUBMIT]
        if msg.outcome == "delivered":
            if self.config.rate_buffered and self.rng.random() < self.config.rate_buffered:
                events.append(FLOWROUTE_BUFFERED)
            events.append(FLOWROUTE_DELIVERED)
        else:
            code = msg.error_code
            description = ERROR_DESCRIPTIONS.get(code, "Message delivery failed")
            events.append((2, FLOWROUTE_FAILURE_STATUS[msg.outcome], str(code), description))
        return events

    def delivery_report(self, msg: Message, event: Event) -> tuple[str, str, dict[str, Any]]:
        level, status, code, desc = event
        payload = {
            "data": {
                "type": "delivery_receipt",
                "id": msg.id,
                "attributes": {
                    "body": "" if msg.type == "mms" else msg.text,
                    "level": level,
                    "status": status,
                    "status_code": code,
                    "status_code_description": desc,
                    "timestamp": _iso_time(),
                },
                "links": {"related": f"{self.server.url}/v2.1/messages/{msg.id}"},
            }
        }
        return status, "POST", payload

    def webhook(self, url: str, method: str, payload: dict[str, Any], tamper: bool = False) -> Webhook:
        return Webhook("POST", _JSON_HEADERS, body=json.dumps(payload, separators=(",", ":")).encode())

    # -- inbound ----------------------------------------------------------------------

    def inbound(
        self, from_: str, to: str, text: str, media: list[Any], message_intent: str | None
    ) -> tuple[str, dict[str, Any]]:
        mid = "mdr2-" + uuid.uuid4().hex
        included = [_media_item(m) for m in media]
        payload: dict[str, Any] = {
            "data": {
                "type": "message",
                "id": mid,
                "attributes": {
                    "body": text,
                    "from": digits(from_),
                    "to": digits(to),
                    "direction": "inbound",
                    "is_mms": bool(media),
                    "message_encoding": 0 if is_gsm7(text) else 8,
                    "message_type": "longcode",
                    "status": "delivered",
                    "timestamp": _iso_time(),
                    "amount_nanodollars": 0,
                    "amount_display": "$0.00",
                },
                "relationships": {"media": {"data": [{"id": i["id"], "type": "media"} for i in included]}},
            }
        }
        if included:
            payload["included"] = included
        return mid, payload

    def add_extra(self, payload: dict[str, Any], extra: dict[str, Any]) -> None:
        payload["data"]["attributes"].update(extra)


def _media_item(m: Any) -> dict[str, Any]:
    """An ``included[]`` media item from a URL or a {url, mime_type, file_size, file_name} dict."""
    if isinstance(m, dict):
        murl = m["url"]
        mime = m.get("mime_type")
        size = m.get("file_size", 0)
        fname = m.get("file_name")
    else:
        murl, mime, size, fname = str(m), None, 0, None
    fname = fname or (urlsplit(murl).path.rsplit("/", 1)[-1] or "media")
    mime = mime or mimetypes.guess_type(fname)[0] or "application/octet-stream"
    return {
        "type": "media",
        "id": uuid.uuid4().hex,
        "attributes": {"file_name": fname, "file_size": int(size), "mime_type": mime, "url": murl},
        "links": {"self": murl},
    }


# -- what the provider contract tests need (tests/providers/test_contract.py) -------------

# Flowroute signs nothing: smsportal puts this secret in its callback URLs.
WEBHOOK_SECRET = "fake-flowroute-webhook-secret"


def product_settings(config: Any, url: str) -> dict[str, str]:
    """smsportal settings that send through the fake at ``url`` and accept its callbacks."""
    return {
        "FLOWROUTE_API_URL": url,
        "FLOWROUTE_ACCESS_KEY": config.flowroute_access_key,
        "FLOWROUTE_SECRET_KEY": config.flowroute_secret_key,
        "FLOWROUTE_WEBHOOK_SECRET": WEBHOOK_SECRET,
    }


def forged_inbound(url: str) -> tuple[str, dict[str, Any]]:
    """An inbound post smsportal must refuse: the URL (with a wrong secret), and ``send_inbound``'s extra arguments."""
    return url.replace(f"/{WEBHOOK_SECRET}/", "/not-the-webhook-secret/"), {}
