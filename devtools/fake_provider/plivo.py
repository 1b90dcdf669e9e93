"""Plivo's API shape: the Message send endpoint, status callbacks, inbound messages, signatures.

Facts: /work/shared/reference/providers.md ("Plivo"). The signer is our own small
implementation, deliberately not :mod:`providers.signatures`: the product's webhook tests sign
with it, so it must not be the code under test. ``tests/fake_provider/test_plivo_oracle.py``
checks it, and the product's verifier, against the official ``plivo`` package.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import os
import time
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from aiohttp import web

from messaging.encoding import analyze

from .base import Event, ProviderAPI, Webhook
from .config import coerced_by, optional_str
from .httputil import FORM, HTTPError, basic_auth, check_basic_auth, digits, form_encode, json_response
from .records import Message

PLIVO = "plivo"


@dataclasses.dataclass
class PlivoConfig:
    plivo_auth_id: str = "MAFAKEACCOUNT0000001"
    plivo_auth_token: str = "fake-plivo-auth-token"
    max_text_len: int = 1600
    max_media: int = 10
    plivo_media_index_base: int = 0  # Media0.. or Media1.. (sources disagree)
    plivo_inbound_url: str | None = dataclasses.field(default=None, metadata=coerced_by(optional_str))


# -- signatures -------------------------------------------------------------------------


def _hmac_b64(key: str, msg: str) -> str:
    digest = hmac.new(key.encode(), msg.encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def _url_base(url: str) -> tuple[str, dict[str, list[str]]]:
    parts = urlsplit(url)
    base = f"{parts.scheme}://{parts.netloc}{parts.path}"
    return base, parse_qs(parts.query, keep_blank_values=True)


def _sorted_query(params: dict[str, Any]) -> str:
    out = []
    for key in sorted(params):
        value = params[key]
        if isinstance(value, list):
            out.append("&".join(f"{key}={v}" for v in sorted(value)))
        else:
            out.append(f"{key}={value}")
    return "&".join(out)


def _sorted_params(params: dict[str, Any]) -> str:
    out = []
    for key in sorted(params):
        value = params[key]
        if isinstance(value, list):
            out.append("".join(f"{key}{v}" for v in sorted(value)))
        else:
            out.append(f"{key}{value}")
    return "".join(out)


def plivo_v3_string(method: str, url: str, params: dict[str, str] | None = None) -> str:
    """The string Plivo signs with V3 (before appending "." + nonce)."""
    params = params or {}
    base, query = _url_base(url)
    if method.upper() == "GET":
        merged: dict[str, Any] = dict(params)
        merged.update(query)
        qs = _sorted_query(merged)
        return f"{base}?{qs}" if qs else base
    qs = _sorted_query(query)
    if not params:
        return f"{base}?{qs}" if qs else base
    return f"{base}?{qs}{'.' if qs else ''}{_sorted_params(params)}"


def plivo_v3_signature(method: str, url: str, nonce: str, auth_token: str, params: dict[str, str] | None = None) -> str:
    """X-Plivo-Signature-V3 for a request of ``method`` to ``url`` with form ``params``."""
    return _hmac_b64(auth_token, f"{plivo_v3_string(method, url, params)}.{nonce}")


def plivo_v2_signature(url: str, nonce: str, auth_token: str) -> str:
    """X-Plivo-Signature-V2: base64 HMAC-SHA256 of scheme://host/path + nonce."""
    base, _ = _url_base(url)
    return _hmac_b64(auth_token, base + nonce)


def plivo_signature_headers(
    method: str, url: str, params: dict[str, str], auth_token: str, nonce: str | None = None
) -> dict[str, str]:
    nonce = nonce or str(int.from_bytes(os.urandom(8), "big")).zfill(20)
    return {
        "X-Plivo-Signature-V3": plivo_v3_signature(method, url, nonce, auth_token, params),
        "X-Plivo-Signature-V3-Nonce": nonce,
        "X-Plivo-Signature-V2": plivo_v2_signature(url, nonce, auth_token),
        "X-Plivo-Signature-V2-Nonce": nonce,
    }


# -- message facts ------------------------------------------------------------------------

# Plivo's keywords for MessageIntent (carrier and FCC words, plus Plivo's RESUME and GO):
# a fact about Plivo, not the product's opt-out rules, which read the text themselves.
_OPTOUT = {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPT OUT", "UNSUB", "OPTOUT"}
_OPTIN = {"START", "YES", "UNSTOP", "RESUME", "GO"}
_HELP = {"HELP", "INFO"}


def detect_intent(text: str) -> str:
    word = " ".join((text or "").upper().split())
    if word in _OPTOUT:
        return "optout"
    if word in _OPTIN:
        return "optin"
    if word in _HELP:
        return "help"
    return ""


def sms_units(text: str) -> int:
    """Number of SMS segments Plivo bills (``Units``); an empty text still costs one.

    No test is about these counts (the product never reads ``Units``), so this is the
    product's own segment counting (:mod:`messaging.encoding`: GSM-7 160/153, UCS-2 70/67,
    escape and surrogate pairs never split). The ``plivo`` package has no segment counter
    to check it against.
    """
    return max(1, analyze(text).segments)


def _plivo_time(ts: float | None = None) -> str:
    return datetime.fromtimestamp(ts if ts is not None else time.time(), UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


# -- the API ------------------------------------------------------------------------------


class PlivoAPI(ProviderAPI):
    """``POST /v1/Account/{auth_id}/Message/``; form-encoded, signed callbacks."""

    name = PLIVO

    def configure(self) -> None:
        self._auth = basic_auth(self.config.plivo_auth_id, self.config.plivo_auth_token)

    def owns(self, path: str) -> bool:
        return path.startswith("/v1/Account/")

    def authorize(self, request: web.BaseRequest, path: str) -> None:
        c = self.config
        parts = path.split("/")  # ['', 'v1', 'Account', auth_id, 'Message', ''?]
        if len(parts) < 5 or parts[4] != "Message" or any(parts[5:]):
            raise HTTPError(404, "not found")
        if request.method != "POST":
            raise HTTPError(405, "method not allowed")
        header = request.headers.get("Authorization")
        if parts[3] != c.plivo_auth_id or not check_basic_auth(header, self._auth, c.plivo_auth_id, c.plivo_auth_token):
            raise HTTPError(401, "Authentication credentials invalid")

    def error(self, status: int, detail: str) -> web.Response:
        return json_response({"api_id": str(uuid.uuid4()), "error": detail}, status)

    async def parse_send(self, request: web.BaseRequest) -> list[Message]:
        raw = await request.read()
        if request.content_type == FORM:
            form = parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True)
            body: Any = {k: v[-1] if k != "media_urls" else v for k, v in form.items()}
        else:
            try:
                body = json.loads(raw) if raw else {}
            except ValueError:
                raise HTTPError(400, "invalid JSON body") from None
        if not isinstance(body, dict):
            raise HTTPError(400, "invalid JSON body")
        src, dsts, text, mtype, media, url, method = self._validate(body)
        now = time.time()
        return [Message(PLIVO, str(uuid.uuid4()), src, "+" + d, text, media, mtype, url, method, now) for d in dsts]

    def _validate(self, body: dict[str, Any]):
        c = self.config
        src = body.get("src")
        powerpack = body.get("powerpack_uuid")
        if src in (None, "") and not powerpack:
            raise HTTPError(400, "src parameter not present")
        if src not in (None, "") and powerpack:
            raise HTTPError(400, "specify either src or powerpack_uuid, not both")
        dst = body.get("dst")
        if dst in (None, ""):
            raise HTTPError(400, "dst parameter not present")
        if not isinstance(dst, str):
            raise HTTPError(400, "dst must be a string")
        mtype = body.get("type") or "sms"
        if mtype not in ("sms", "mms"):
            raise HTTPError(400, "type must be sms or mms")
        text = body.get("text")
        media = body.get("media_urls")
        media_ids = body.get("media_ids") or []
        if media is not None:
            if isinstance(media, str):
                media = [media]
            if not isinstance(media, list) or not all(isinstance(u, str) for u in media):
                raise HTTPError(400, "media_urls must be a list of URLs")
            if not media:
                media = None
        if text is None or text == "":
            if not (mtype == "mms" and (media or media_ids)):
                raise HTTPError(400, "text parameter not present")
            text = ""
        if not isinstance(text, str):
            raise HTTPError(400, "text must be a string")
        if len(text) > c.max_text_len:
            raise HTTPError(400, f"text exceeds {c.max_text_len} characters")
        if mtype == "sms" and (media or media_ids):
            raise HTTPError(400, "media_urls and media_ids are only allowed for type mms")
        if mtype == "mms":
            n_media = len(media or ()) + len(media_ids)
            if n_media == 0:
                raise HTTPError(400, "media_urls is required for type mms")
            if n_media > c.max_media:
                raise HTTPError(400, f"at most {c.max_media} media attachments are allowed")
        url = body.get("url") or None
        method = (body.get("method") or "POST").upper()
        if method not in ("GET", "POST"):
            raise HTTPError(400, "method must be GET or POST")
        if url is not None and not (isinstance(url, str) and url.startswith(("http://", "https://"))):
            raise HTTPError(400, "url must be a valid http(s) URL")
        src_digits = digits(src) if src else ""
        dsts = []
        for raw in dst.split("<"):
            d = raw.strip()
            if d.startswith("+"):
                d = d[1:]
            if not (d.isdigit() and d.isascii() and 8 <= len(d) <= 15):
                raise HTTPError(400, f"invalid destination number: {raw}")
            if src_digits and d == src_digits:
                raise HTTPError(400, "src and dst cannot be the same number")
            dsts.append(d)
        return str(src) if src else "", dsts, text, mtype, tuple(media) if media else None, url, method

    def accepted(self, request: web.BaseRequest, msgs: list[Message]) -> web.Response:
        body = {"api_id": str(uuid.uuid4()), "message": "message(s) queued", "message_uuid": [m.id for m in msgs]}
        return json_response(body, 202)

    # -- status callbacks -------------------------------------------------------------

    def delivery_events(self, msg: Message) -> list[Event]:
        return [("sent", None), (msg.outcome, msg.error_code)]

    def delivery_report(self, msg: Message, event: Event) -> tuple[str, str, dict[str, Any]]:
        status, code = event
        queued = _plivo_time(msg.received_at)
        now = _plivo_time()
        units = 1 if msg.type == "mms" else sms_units(msg.text)
        rate = 0.02 if msg.type == "mms" else 0.0055
        params = {
            "MessageUUID": msg.id,
            "To": msg.dst.lstrip("+"),
            "From": msg.src.lstrip("+"),
            "Type": msg.type,
            "Status": status,
            "Units": str(units),
            "TotalRate": f"{rate:.5f}",
            "TotalAmount": f"{rate * units:.5f}",
            "MCC": "310",
            "MNC": "410",
            "ParentMessageUUID": msg.id,
            "PartInfo": "1 of 1",
            "Sequence": "1",
            "MessageTime": queued,
            "QueuedTime": queued,
            "SentTime": now,
            "DeliveryReportTime": now,
            "PowerpackUUID": "",
        }
        if status in ("failed", "undelivered"):
            params["ErrorCode"] = str(code)
        return status, msg.method, params

    def webhook(self, url: str, method: str, payload: dict[str, Any], tamper: bool = False) -> Webhook:
        headers = plivo_signature_headers(method, url, payload, self.config.plivo_auth_token)
        if tamper:
            headers["X-Plivo-Signature-V3"] = _hmac_b64("wrong-token", url)
            headers["X-Plivo-Signature-V2"] = _hmac_b64("wrong-token", url)
        if method == "GET":
            return Webhook(method, headers, query=payload)
        headers["Content-Type"] = FORM
        return Webhook(method, headers, body=form_encode(payload).encode())

    # -- inbound ----------------------------------------------------------------------

    def inbound(
        self, from_: str, to: str, text: str, media: list[Any], message_intent: str | None
    ) -> tuple[str, dict[str, Any]]:
        mid = str(uuid.uuid4())
        mtype = "mms" if media else "sms"
        form = {
            "From": digits(from_),
            "To": digits(to),
            "Type": mtype,
            "MessageUUID": mid,
            "Units": str(1 if media else sms_units(text)),
            "TotalRate": "0.00000",
            "TotalAmount": "0.00000",
            "PowerpackUUID": "",
            "MessageIntent": detect_intent(text) if message_intent is None else message_intent,
        }
        if mtype == "sms":
            form["Text"] = text
        else:
            form["Body"] = text
            form["MediaCount"] = str(len(media))
            for i, m in enumerate(media):
                form[f"Media{i + self.config.plivo_media_index_base}"] = m["url"] if isinstance(m, dict) else str(m)
        return mid, form

    def add_extra(self, payload: dict[str, Any], extra: dict[str, Any]) -> None:
        payload.update({k: str(v) for k, v in extra.items()})


# -- what the provider contract tests need (tests/providers/test_contract.py) -------------


# smsportal puts this secret in its Plivo callback URLs (V2 signs no body; see docs/security.md).
WEBHOOK_SECRET = "fake-plivo-webhook-secret"


def product_settings(config: Any, url: str) -> dict[str, str]:
    """smsportal settings that send through the fake at ``url`` and accept its signed callbacks."""
    return {
        "PLIVO_API_URL": url,
        "PLIVO_AUTH_ID": config.plivo_auth_id,
        "PLIVO_AUTH_TOKEN": config.plivo_auth_token,
        "PLIVO_WEBHOOK_SECRET": WEBHOOK_SECRET,
    }


def forged_inbound(url: str) -> tuple[str, dict[str, Any]]:
    """An inbound post smsportal must refuse: the URL, and ``send_inbound``'s extra arguments."""
    return url, {"tamper_signature": True}
