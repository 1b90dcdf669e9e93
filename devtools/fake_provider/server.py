"""Fake Plivo + Flowroute SMS/MMS provider: a standalone aiohttp server.

Used by tests, the local run and benchmarks. It never imports Django; from the project it
uses only the pure-Python :mod:`campaigns.encoding`. Besides the standard library it needs
aiohttp (+ uvloop when installed).

Two ways to run it:

* in-process, from sync test code: ``FakeProvider(**config).start()`` runs the server in
  a background thread with its own event loop on 127.0.0.1 and an ephemeral port;
* in an asyncio program: ``await FakeProviderServer(**config).start()``;
* as a separate process: ``python -m devtools.fake_provider`` or
  :func:`devtools.fake_provider.client.run_in_subprocess`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import dataclasses
import hashlib
import hmac
import json
import logging
import mimetypes
import os
import random
import re
import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, quote_plus, urlsplit

import aiohttp
from aiohttp import web

from campaigns.encoding import analyze, is_gsm7

log = logging.getLogger("devtools.fake_provider")

PLIVO = "plivo"
FLOWROUTE = "flowroute"

_JSON = "application/json"
_JSONAPI = "application/vnd.api+json"
_FORM = "application/x-www-form-urlencoded"
_JSON_HEADERS = {"Content-Type": _JSON}

# --------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------

DEFAULT_ERROR_CODES: dict[str, list[int]] = {
    # Plivo ErrorCode values picked (uniformly) for each non-delivered outcome.
    "undelivered": [80, 20, 70],
    "failed": [30, 200, 50, 90, 100],
}

PLIVO_ERROR_DESCRIPTIONS = {
    0: "Success",
    10: "Invalid message",
    20: "Network error",
    30: "Spam detected",
    40: "Invalid source number",
    50: "Invalid destination number",
    60: "Loop detected",
    70: "Destination permanently unavailable",
    80: "Destination temporarily unavailable",
    90: "No route available",
    100: "Prohibited by carrier",
    110: "Message too long",
    120: "MMS message payload too large",
    200: "Source number opted out (STOP)",
    201: "US toll-free to Canada blocked",
    420: "Message expired in queue",
    1000: "Unknown error",
}

# (level, status, status_code, status_code_description) of Flowroute DLR steps.
FLOWROUTE_SUBMIT = (1, "smsc submit", "1001", "Message submitted to carrier")
FLOWROUTE_BUFFERED = (2, "message buffered", "1003", "Message buffered by carrier")
FLOWROUTE_DELIVERED = (2, "delivered", "1000", "Message delivered to handset")
FLOWROUTE_FAILURE_STATUS = {"undelivered": "undeliverable", "failed": "failed"}

_RATE_FIELDS = (
    "rate_5xx",
    "rate_429",
    "rate_timeout",
    "rate_drop",
    "rate_accept_timeout",
    "rate_accept_drop",
    "rate_undelivered",
    "rate_failed",
    "rate_buffered",
    "duplicate_callbacks",
    "out_of_order",
    "early_callback",
)


@dataclasses.dataclass
class FakeConfig:
    """Every runtime setting of the fake provider (all changeable at runtime)."""

    # credentials
    plivo_auth_id: str = "MAFAKEACCOUNT0000001"
    plivo_auth_token: str = "fake-plivo-auth-token"
    flowroute_access_key: str = "fake-access-key"
    flowroute_secret_key: str = "fake-secret-key"
    # latency added to every send (before answering)
    latency_ms: float = 0.0
    latency_jitter_ms: float = 0.0
    # transport / HTTP faults (one draw per authenticated send; never recorded as accepted)
    rate_5xx: float = 0.0
    codes_5xx: list[int] = dataclasses.field(default_factory=lambda: [500, 502, 503])
    rate_429: float = 0.0
    retry_after: int = 1
    rate_timeout: float = 0.0
    timeout_hold_s: float = 30.0
    rate_drop: float = 0.0
    # ambiguous faults: the message IS accepted (recorded, callbacks sent) but the
    # client does not get the answer in time (held timeout_hold_s) / at all (dropped)
    rate_accept_timeout: float = 0.0
    rate_accept_drop: float = 0.0
    # delivery outcomes (the rest is delivered)
    rate_undelivered: float = 0.0
    rate_failed: float = 0.0
    rate_buffered: float = 0.0  # Flowroute: "message buffered" (1003) before delivered
    error_codes: dict[str, list[int]] = dataclasses.field(
        default_factory=lambda: {k: list(v) for k, v in DEFAULT_ERROR_CODES.items()}
    )
    # per-number behaviour, keys are numbers (compared by digits only)
    # fail_numbers: {"+15551230000": {"http": 400, "error": "invalid destination"}}
    fail_numbers: dict[str, Any] = dataclasses.field(default_factory=dict)
    # accept_then_fail: {"+15551230001": {"status": "failed", "error_code": 30}} or code
    accept_then_fail: dict[str, Any] = dataclasses.field(default_factory=dict)
    # status callbacks
    callbacks: bool = True
    callback_delay_s: float = 0.2
    callback_jitter_s: float = 0.0
    callback_timeout_s: float = 10.0
    callback_retries: int = 0
    callback_retry_delay_s: float = 0.5
    callback_concurrency: int = 100
    duplicate_callbacks: float = 0.0  # probability that each callback is sent twice
    out_of_order: float = 0.0  # probability that a message's callbacks come reversed
    early_callback: float = 0.0  # probability that callbacks come before the 202
    early_callback_mode: str = "all"  # "all": whole sequence early, "first": only first
    # misc
    seed: int | None = None
    record_messages: bool = True
    # send plain-http webhooks with a minimal keep-alive HTTP/1.1 client (about 3x less
    # CPU than aiohttp's client); https URLs always use the aiohttp ClientSession
    fast_http: bool = True
    max_text_len: int = 1600
    max_media: int = 10
    plivo_media_index_base: int = 0
    plivo_inbound_url: str | None = None
    flowroute_inbound_url: str | None = None

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def update(self, **kw: Any) -> None:
        """Partial update with validation; raises ValueError (nothing changed) on error."""
        names = {f.name: f for f in dataclasses.fields(self)}
        unknown = sorted(set(kw) - set(names))
        if unknown:
            raise ValueError(f"unknown config key(s): {', '.join(unknown)}")
        new = dataclasses.replace(self)
        for key, value in kw.items():
            setattr(new, key, _coerce(key, value))
        new.validate()
        for key in kw:
            setattr(self, key, getattr(new, key))

    def validate(self) -> None:
        for name in _RATE_FIELDS:
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"{name} must be within [0, 1], got {v}")
        faults = (
            self.rate_5xx
            + self.rate_429
            + self.rate_timeout
            + self.rate_drop
            + self.rate_accept_timeout
            + self.rate_accept_drop
        )
        if faults > 1.0 + 1e-9:
            raise ValueError("the fault rates add up to more than 1")
        if self.rate_undelivered + self.rate_failed > 1.0 + 1e-9:
            raise ValueError("rate_undelivered + rate_failed is more than 1")
        if self.early_callback_mode not in ("all", "first"):
            raise ValueError("early_callback_mode must be 'all' or 'first'")
        if self.callback_concurrency < 1:
            raise ValueError("callback_concurrency must be >= 1")
        for key in ("undelivered", "failed"):
            codes = self.error_codes.get(key)
            if not codes:
                raise ValueError(f"error_codes[{key!r}] must be a non-empty list")
        if not self.codes_5xx or any(not 500 <= c <= 599 for c in self.codes_5xx):
            raise ValueError("codes_5xx must be a non-empty list of 5xx codes")
        for number, spec in self.fail_numbers.items():
            _fail_number_spec(number, spec)
        for number, spec in self.accept_then_fail.items():
            _accept_then_fail_spec(number, spec)


def _coerce(key: str, value: Any) -> Any:
    if key in _RATE_FIELDS:
        if isinstance(value, bool):
            return 1.0 if value else 0.0
        return float(value)
    if key in ("error_codes",):
        if not isinstance(value, dict):
            raise ValueError("error_codes must be a dict")
        merged = {k: list(v) for k, v in DEFAULT_ERROR_CODES.items()}
        merged.update({str(k): [int(c) for c in v] for k, v in value.items()})
        return merged
    if key in ("fail_numbers", "accept_then_fail"):
        if not isinstance(value, dict):
            raise ValueError(f"{key} must be a dict")
        return dict(value)
    if key == "codes_5xx":
        return [int(c) for c in value]
    if key in ("callbacks", "record_messages", "fast_http"):
        if isinstance(value, str):
            return value.lower() in ("1", "true", "yes", "on")
        return bool(value)
    if key == "seed":
        return None if value is None or value == "" else int(value)
    if key in (
        "retry_after",
        "callback_retries",
        "callback_concurrency",
        "max_text_len",
        "max_media",
        "plivo_media_index_base",
    ):
        return int(value)
    if key in (
        "latency_ms",
        "latency_jitter_ms",
        "timeout_hold_s",
        "callback_delay_s",
        "callback_jitter_s",
        "callback_timeout_s",
        "callback_retry_delay_s",
    ):
        return float(value)
    if key in ("plivo_inbound_url", "flowroute_inbound_url"):
        return value or None
    return str(value)


def _digits(number: Any) -> str:
    return re.sub(r"\D", "", str(number))


def _fail_number_spec(number: str, spec: Any) -> tuple[int, str]:
    if isinstance(spec, int) and not isinstance(spec, bool):
        spec = {"http": spec}
    if not isinstance(spec, dict) or "http" not in spec:
        raise ValueError(f"fail_numbers[{number!r}] must be {{'http': code, 'error': text}}")
    http = int(spec["http"])
    if not 400 <= http <= 599:
        raise ValueError(f"fail_numbers[{number!r}]['http'] must be a 4xx/5xx status")
    return http, str(spec.get("error") or "destination number rejected")


def _accept_then_fail_spec(number: str, spec: Any) -> tuple[str, int]:
    if isinstance(spec, int) and not isinstance(spec, bool):
        spec = {"status": "failed", "error_code": spec}
    if isinstance(spec, str):
        spec = {"status": spec}
    if not isinstance(spec, dict):
        raise ValueError(f"accept_then_fail[{number!r}] must be a dict, a status or a code")
    status = str(spec.get("status", "failed"))
    if status not in ("failed", "undelivered"):
        raise ValueError(f"accept_then_fail[{number!r}] status must be failed|undelivered")
    code = int(spec.get("error_code", 30 if status == "failed" else 80))
    return status, code


# --------------------------------------------------------------------------------------
# Plivo signatures (own implementation; the tests check it against the plivo package)
# --------------------------------------------------------------------------------------


_FORM_SAFE = re.compile(r"[A-Za-z0-9_.~ :-]*\Z").match


def form_encode(params: dict[str, Any]) -> str:
    """Same output as urllib.parse.urlencode(params), several times faster for the
    mostly-safe values of webhooks."""
    out = []
    for k, v in params.items():
        k = str(k)
        v = str(v)
        k = k.replace(" ", "+").replace(":", "%3A") if _FORM_SAFE(k) else quote_plus(k)
        v = v.replace(" ", "+").replace(":", "%3A") if _FORM_SAFE(v) else quote_plus(v)
        out.append(f"{k}={v}")
    return "&".join(out)


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


# --------------------------------------------------------------------------------------
# SMS helpers
# --------------------------------------------------------------------------------------

_OPTOUT = {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPT OUT"}
_OPTOUT |= {"UNSUB", "OPTOUT"}
_OPTIN = {"START", "YES", "UNSTOP", "RESUME", "GO"}
_HELP = {"HELP", "INFO"}


def sms_units(text: str) -> int:
    """Number of SMS segments Plivo bills (``Units``); an empty text still costs one.

    No test is about these counts (the product never reads ``Units``), so this is the
    product's own segment counting (:mod:`campaigns.encoding`: GSM-7 160/153, UCS-2 70/67,
    escape and surrogate pairs never split). The ``plivo`` package has no segment counter
    to check it against.
    """
    return max(1, analyze(text).segments)


def detect_intent(text: str) -> str:
    word = " ".join((text or "").upper().split())
    if word in _OPTOUT:
        return "optout"
    if word in _OPTIN:
        return "optin"
    if word in _HELP:
        return "help"
    return ""


def _plivo_time(ts: float | None = None) -> str:
    return datetime.fromtimestamp(ts if ts is not None else time.time(), UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _iso_time(ts: float | None = None) -> str:
    return datetime.fromtimestamp(ts if ts is not None else time.time(), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------------------------------
# Recorded messages
# --------------------------------------------------------------------------------------

MESSAGE_FIELDS = (
    "provider",
    "id",
    "src",
    "dst",
    "text",
    "media_urls",
    "type",
    "url",
    "method",
    "received_at",
    "outcome",
    "error_code",
    "last_status",
)


class Message:
    """One accepted message (one per destination). Slots keep it small."""

    __slots__ = MESSAGE_FIELDS

    def __init__(self, provider, id, src, dst, text, media_urls, type, url, method, received_at):
        self.provider = provider
        self.id = id
        self.src = src
        self.dst = dst
        self.text = text
        self.media_urls = media_urls
        self.type = type
        self.url = url
        self.method = method
        self.received_at = received_at
        self.outcome = "delivered"
        self.error_code = None
        self.last_status = None

    def to_dict(self, fields: tuple[str, ...] = MESSAGE_FIELDS) -> dict[str, Any]:
        d = {f: getattr(self, f) for f in fields}
        if "media_urls" in d and d["media_urls"] is not None:
            d["media_urls"] = list(d["media_urls"])
        return d


# --------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------


class _HTTPError(Exception):
    def __init__(self, status: int, detail: str):
        super().__init__(detail)
        self.status = status
        self.detail = detail


def _json_response(data: Any, status: int = 200, content_type: str = _JSON, headers=None):
    return web.Response(
        body=json.dumps(data, separators=(",", ":")).encode(),
        status=status,
        content_type=content_type,
        headers=headers,
    )


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _check_basic(header: str | None, expected: str, user: str, password: str) -> bool:
    if header is None:
        return False
    if header == expected:
        return True
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        got = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return False
    u, _, p = got.partition(":")
    return hmac.compare_digest(u, user) and hmac.compare_digest(p, password)


def _new_stats() -> dict[str, Any]:
    return {
        "requests": 0,
        "accepted": 0,
        "accepted_plivo": 0,
        "accepted_flowroute": 0,
        "status_codes": Counter(),
        "fault_5xx": 0,
        "fault_429": 0,
        "fault_timeout": 0,
        "fault_drop": 0,
        "fault_accept_timeout": 0,
        "fault_accept_drop": 0,
        "outcomes": Counter(),
        "callbacks_sent": 0,
        "callbacks_failed": 0,
        "callbacks_retried": 0,
        "callbacks_duplicated": 0,
        "callback_status_codes": Counter(),
        "inbound_sent": 0,
        "inbound_failed": 0,
    }


class FakeProviderServer:
    """The asyncio server. Use from a running loop: ``await start()`` / ``await stop()``."""

    def __init__(self, config: FakeConfig | None = None, **kw: Any):
        self.config = dataclasses.replace(config) if config else FakeConfig()
        if kw:
            self.config.update(**kw)
        self.config.validate()
        self._initial_config = dataclasses.replace(self.config)
        self.host = "127.0.0.1"
        self.port = 0
        self._runner: web.ServerRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._raw = _RawHTTP()
        self._tasks: set[asyncio.Task] = set()
        self._holds: set[asyncio.Task] = set()
        self._sem = asyncio.Semaphore(self.config.callback_concurrency)
        self._sem_size = self.config.callback_concurrency
        self._reset_state()
        self._apply_config()

    # -- state ---------------------------------------------------------------------

    def _reset_state(self) -> None:
        self.messages: list[Message] = []
        self.pair_counts: dict[tuple[str, str], int] = {}
        self.duplicate_pairs = 0
        self.duplicate_sends = 0
        self.stats_data = _new_stats()
        self._rng = random.Random(self.config.seed)

    def _apply_config(self) -> None:
        c = self.config
        self._plivo_auth = _basic(c.plivo_auth_id, c.plivo_auth_token)
        self._flowroute_auth = _basic(c.flowroute_access_key, c.flowroute_secret_key)
        self._fault_total = (
            c.rate_drop + c.rate_timeout + c.rate_5xx + c.rate_429 + c.rate_accept_timeout + c.rate_accept_drop
        )
        self._fail_numbers = {_digits(k): _fail_number_spec(k, v) for k, v in c.fail_numbers.items()}
        self._accept_then_fail = {_digits(k): _accept_then_fail_spec(k, v) for k, v in c.accept_then_fail.items()}
        self._cb_timeout = aiohttp.ClientTimeout(total=c.callback_timeout_s)
        if c.callback_concurrency != self._sem_size:
            self._sem = asyncio.Semaphore(c.callback_concurrency)
            self._sem_size = c.callback_concurrency

    def configure(self, **kw: Any) -> dict[str, Any]:
        self.config.update(**kw)
        if "seed" in kw:
            self._rng = random.Random(self.config.seed)
        self._apply_config()
        return self.config.to_dict()

    def reset(self, config: bool = False) -> None:
        """Clear recorded messages and stats (and the config too when ``config``)."""
        if config:
            self.config = dataclasses.replace(self._initial_config)
            self._apply_config()
        self._reset_state()

    def stats(self) -> dict[str, Any]:
        s = dict(self.stats_data)
        for key in ("status_codes", "callback_status_codes"):
            s[key] = {str(k): v for k, v in sorted(s[key].items(), key=lambda kv: str(kv[0]))}
        s["outcomes"] = dict(s["outcomes"])
        s["recorded"] = len(self.messages)
        s["unique_pairs"] = len(self.pair_counts)
        s["duplicates"] = self.duplicate_pairs
        s["duplicate_sends"] = self.duplicate_sends
        s["callbacks_pending"] = len(self._tasks)
        return s

    def list_messages(
        self,
        fields: tuple[str, ...] | None = None,
        provider: str | None = None,
        dst: str | None = None,
        offset: int = 0,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        fields = fields or MESSAGE_FIELDS
        bad = set(fields) - set(MESSAGE_FIELDS)
        if bad:
            raise ValueError(f"unknown field(s): {', '.join(sorted(bad))}")
        msgs = self.messages
        if provider or dst:
            want = _digits(dst) if dst else None
            msgs = [
                m for m in msgs if (not provider or m.provider == provider) and (want is None or _digits(m.dst) == want)
            ]
        end = None if limit is None else offset + limit
        return [m.to_dict(fields) for m in msgs[offset:end]]

    def duplicates(self) -> list[dict[str, Any]]:
        return [{"dst": dst, "text": text, "count": n} for (dst, text), n in self.pair_counts.items() if n > 1]

    async def drain(self, timeout: float = 10.0) -> int:
        """Wait until no callback is pending (or timeout); returns how many are left."""
        deadline = time.monotonic() + timeout
        while self._tasks:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            await asyncio.wait(set(self._tasks), timeout=left)
        return len(self._tasks)

    # -- lifecycle -------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self.host = host
        server = web.Server(self._dispatch, access_log=None)
        self._runner = web.ServerRunner(server, shutdown_timeout=1.0, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, backlog=2048, reuse_address=True)
        await site.start()
        self.port = self._runner.addresses[0][1]
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, ttl_dns_cache=300),
            headers={"User-Agent": "smsportal-fake-provider/1.0"},
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=False,
        )
        return self.url

    async def stop(self) -> None:
        for t in list(self._holds) + list(self._tasks):
            t.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._session is not None:
            await self._session.close()
            self._session = None
        self._raw.close()

    # -- dispatch --------------------------------------------------------------------

    async def _dispatch(self, request: web.BaseRequest) -> web.StreamResponse:
        path = request.path
        try:
            if path.startswith("/v1/Account/"):
                return await self._plivo_send(request, path)
            if path == "/v2.1/messages" or path == "/v2.1/messages/":
                return await self._flowroute_send(request)
            if path.startswith("/_fake/"):
                return await self._control(request, path)
        except _HTTPError as e:
            return _json_response({"error": e.detail}, status=e.status)
        return _json_response({"error": f"not found: {path}"}, status=404)

    def _count(self, status: int) -> None:
        self.stats_data["status_codes"][status] += 1

    async def _fault(self, request: web.BaseRequest, provider: str):
        """Draw one fault. Returns (response-or-None, deferred) where deferred is
        'accept_timeout' / 'accept_drop' for faults applied after recording."""
        r = self._rng.random()
        c = self.config
        s = self.stats_data
        edge = c.rate_drop
        if r < edge:
            s["fault_drop"] += 1
            return self._drop(request), None
        edge += c.rate_timeout
        if r < edge:
            s["fault_timeout"] += 1
            return await self._hold(provider), None
        edge += c.rate_5xx
        if r < edge:
            s["fault_5xx"] += 1
            status = self._rng.choice(c.codes_5xx)
            self._count(status)
            return self._error(provider, status, "internal server error (injected)"), None
        edge += c.rate_429
        if r < edge:
            s["fault_429"] += 1
            self._count(429)
            resp = self._error(provider, 429, "too many requests (injected)")
            resp.headers["Retry-After"] = str(c.retry_after)
            return resp, None
        edge += c.rate_accept_timeout
        if r < edge:
            return None, "accept_timeout"
        edge += c.rate_accept_drop
        if r < edge:
            return None, "accept_drop"
        return None, None

    def _drop(self, request: web.BaseRequest) -> web.Response:
        transport = request.transport
        if transport is not None:
            transport.close()
        # never written: the transport is closing, aiohttp drops it silently
        return web.Response(status=500)

    async def _hold(self, provider: str, response: web.Response | None = None) -> web.Response:
        task = asyncio.current_task()
        if task is not None:
            self._holds.add(task)
        try:
            await asyncio.sleep(self.config.timeout_hold_s)
        finally:
            self._holds.discard(task)
        if response is not None:
            return response
        self._count(504)
        return self._error(provider, 504, "gateway timeout (injected)")

    async def _latency(self) -> None:
        c = self.config
        if c.latency_ms or c.latency_jitter_ms:
            delay = c.latency_ms + (self._rng.random() * c.latency_jitter_ms)
            await asyncio.sleep(delay / 1000.0)

    def _error(self, provider: str, status: int, detail: str) -> web.Response:
        if provider == PLIVO:
            return _json_response({"api_id": str(uuid.uuid4()), "error": detail}, status)
        title = {
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
        }.get(status, "Error")
        error = {"id": str(uuid.uuid4()), "status": status, "title": title, "detail": detail}
        body = {"errors": [error]}
        return _json_response(body, status, content_type=_JSONAPI)

    def _reject(self, provider: str, status: int, detail: str) -> web.Response:
        self._count(status)
        return self._error(provider, status, detail)

    async def _finish(self, request, provider, resp, deferred) -> web.StreamResponse:
        if deferred == "accept_timeout":
            self.stats_data["fault_accept_timeout"] += 1
            return await self._hold(provider, resp)
        if deferred == "accept_drop":
            self.stats_data["fault_accept_drop"] += 1
            return self._drop(request)
        return resp

    # -- Plivo -----------------------------------------------------------------------

    async def _plivo_send(self, request: web.BaseRequest, path: str) -> web.StreamResponse:
        self.stats_data["requests"] += 1
        c = self.config
        parts = path.split("/")  # ['', 'v1', 'Account', auth_id, 'Message', ''?]
        if len(parts) < 5 or parts[4] != "Message" or any(parts[5:]):
            return self._reject(PLIVO, 404, "not found")
        if request.method != "POST":
            return self._reject(PLIVO, 405, "method not allowed")
        if parts[3] != c.plivo_auth_id or not _check_basic(
            request.headers.get("Authorization"),
            self._plivo_auth,
            c.plivo_auth_id,
            c.plivo_auth_token,
        ):
            return self._reject(PLIVO, 401, "Authentication credentials invalid")

        deferred = None
        if self._fault_total:
            resp, deferred = await self._fault(request, PLIVO)
            if resp is not None:
                return resp
        await self._latency()

        raw = await request.read()
        ctype = request.content_type
        if ctype == "application/x-www-form-urlencoded":
            form = parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True)
            body: Any = {k: v[-1] if k != "media_urls" else v for k, v in form.items()}
        else:
            try:
                body = json.loads(raw) if raw else {}
            except ValueError:
                return self._reject(PLIVO, 400, "invalid JSON body")
        if not isinstance(body, dict):
            return self._reject(PLIVO, 400, "invalid JSON body")

        try:
            src, dsts, text, mtype, media, url, method = self._plivo_validate(body)
        except _HTTPError as e:
            return self._reject(PLIVO, e.status, e.detail)

        for d in dsts:
            spec = self._fail_numbers.get(d)
            if spec is not None:
                return self._reject(PLIVO, spec[0], spec[1])

        now = time.time()
        uuids = []
        msgs = []
        for d in dsts:
            mid = str(uuid.uuid4())
            uuids.append(mid)
            msgs.append(Message(PLIVO, mid, src, "+" + d, text, media, mtype, url, method, now))
        self._count(202)
        resp = _json_response(
            {"api_id": str(uuid.uuid4()), "message": "message(s) queued", "message_uuid": uuids},
            202,
        )
        for m in msgs:
            self._record(m)
        await self._callbacks_for(msgs)
        return await self._finish(request, PLIVO, resp, deferred)

    def _plivo_validate(self, body: dict[str, Any]):
        c = self.config
        src = body.get("src")
        powerpack = body.get("powerpack_uuid")
        if src in (None, "") and not powerpack:
            raise _HTTPError(400, "src parameter not present")
        if src not in (None, "") and powerpack:
            raise _HTTPError(400, "specify either src or powerpack_uuid, not both")
        dst = body.get("dst")
        if dst in (None, ""):
            raise _HTTPError(400, "dst parameter not present")
        if not isinstance(dst, str):
            raise _HTTPError(400, "dst must be a string")
        mtype = body.get("type") or "sms"
        if mtype not in ("sms", "mms"):
            raise _HTTPError(400, "type must be sms or mms")
        text = body.get("text")
        media = body.get("media_urls")
        media_ids = body.get("media_ids") or []
        if media is not None:
            if isinstance(media, str):
                media = [media]
            if not isinstance(media, list) or not all(isinstance(u, str) for u in media):
                raise _HTTPError(400, "media_urls must be a list of URLs")
            if not media:
                media = None
        if text is None or text == "":
            if not (mtype == "mms" and (media or media_ids)):
                raise _HTTPError(400, "text parameter not present")
            text = ""
        if not isinstance(text, str):
            raise _HTTPError(400, "text must be a string")
        if len(text) > c.max_text_len:
            raise _HTTPError(400, f"text exceeds {c.max_text_len} characters")
        if mtype == "sms" and (media or media_ids):
            raise _HTTPError(400, "media_urls and media_ids are only allowed for type mms")
        if mtype == "mms":
            n_media = len(media or ()) + len(media_ids)
            if n_media == 0:
                raise _HTTPError(400, "media_urls is required for type mms")
            if n_media > c.max_media:
                raise _HTTPError(400, f"at most {c.max_media} media attachments are allowed")
        url = body.get("url") or None
        method = (body.get("method") or "POST").upper()
        if method not in ("GET", "POST"):
            raise _HTTPError(400, "method must be GET or POST")
        if url is not None and not (isinstance(url, str) and url.startswith(("http://", "https://"))):
            raise _HTTPError(400, "url must be a valid http(s) URL")
        src_digits = _digits(src) if src else ""
        dsts = []
        for raw in dst.split("<"):
            d = raw.strip()
            if d.startswith("+"):
                d = d[1:]
            if not (d.isdigit() and d.isascii() and 8 <= len(d) <= 15):
                raise _HTTPError(400, f"invalid destination number: {raw}")
            if src_digits and d == src_digits:
                raise _HTTPError(400, "src and dst cannot be the same number")
            dsts.append(d)
        return (
            str(src) if src else "",
            dsts,
            text,
            mtype,
            tuple(media) if media else None,
            url,
            method,
        )

    # -- Flowroute -------------------------------------------------------------------

    async def _flowroute_send(self, request: web.BaseRequest) -> web.StreamResponse:
        self.stats_data["requests"] += 1
        c = self.config
        if request.method != "POST":
            return self._reject(FLOWROUTE, 405, "method not allowed")
        if not _check_basic(
            request.headers.get("Authorization"),
            self._flowroute_auth,
            c.flowroute_access_key,
            c.flowroute_secret_key,
        ):
            return self._reject(FLOWROUTE, 401, "Invalid access key or secret key")
        deferred = None
        if self._fault_total:
            resp, deferred = await self._fault(request, FLOWROUTE)
            if resp is not None:
                return resp
        await self._latency()

        if request.content_type not in (_JSON, _JSONAPI):
            return self._reject(FLOWROUTE, 415, "Content-Type must be application/vnd.api+json or application/json")
        raw = await request.read()
        try:
            body = json.loads(raw)
        except ValueError:
            return self._reject(FLOWROUTE, 422, "request body is not valid JSON")
        try:
            src, dst, text, mtype, media, url = self._flowroute_validate(body)
        except _HTTPError as e:
            return self._reject(FLOWROUTE, e.status, e.detail)
        spec = self._fail_numbers.get(dst)
        if spec is not None:
            return self._reject(FLOWROUTE, spec[0], spec[1])

        mid = "mdr2-" + uuid.uuid4().hex
        msg = Message(FLOWROUTE, mid, src, dst, text, media, mtype, url, "POST", time.time())
        self._count(202)
        resp = _json_response(
            {
                "data": {
                    "id": mid,
                    "type": "message",
                    "links": {"self": f"{request.scheme}://{request.host}/v2.1/messages/{mid}"},
                }
            },
            202,
            content_type=_JSONAPI,
        )
        self._record(msg)
        await self._callbacks_for((msg,))
        return await self._finish(request, FLOWROUTE, resp, deferred)

    def _flowroute_validate(self, body: Any):
        if not isinstance(body, dict):
            raise _HTTPError(422, "request body must be a JSON object")
        data = body.get("data")
        if isinstance(data, dict):
            if data.get("type", "message") != "message":
                raise _HTTPError(422, "data.type must be 'message'")
            attrs = data.get("attributes")
            if not isinstance(attrs, dict):
                raise _HTTPError(422, "data.attributes must be an object")
        else:
            attrs = body
        src = attrs.get("from")
        dst = attrs.get("to")
        for name, value in (("from", src), ("to", dst)):
            if value in (None, ""):
                raise _HTTPError(422, f"'{name}' is required")
            if not isinstance(value, str) or not _NANP.match(value):
                raise _HTTPError(422, f"'{name}' must be an 11-digit NANP number like 12065551234, got {value!r}")
        text = attrs.get("body")
        if text is None:
            text = ""
        if not isinstance(text, str):
            raise _HTTPError(422, "'body' must be a string")
        is_mms = attrs.get("is_mms", False)
        if isinstance(is_mms, str):
            is_mms = is_mms.lower() == "true"
        if not isinstance(is_mms, bool):
            raise _HTTPError(422, "'is_mms' must be a boolean")
        media = attrs.get("media_urls")
        if media is not None:
            if not isinstance(media, list) or not all(isinstance(u, str) for u in media):
                raise _HTTPError(422, "'media_urls' must be a list of URLs")
            if not media:
                media = None
        if media:
            is_mms = True
        if not text and not is_mms:
            raise _HTTPError(422, "'body' is required for an SMS")
        url = attrs.get("dlr_callback") or None
        if url is not None and not (isinstance(url, str) and url.startswith(("http://", "https://"))):
            raise _HTTPError(422, "'dlr_callback' must be an http(s) URL")
        return src, dst, text, "mms" if is_mms else "sms", tuple(media) if media else None, url

    # -- recording and callbacks ---------------------------------------------------

    def _record(self, msg: Message) -> None:
        s = self.stats_data
        s["accepted"] += 1
        s["accepted_" + msg.provider] += 1
        c = self.config
        d = _digits(msg.dst) if msg.provider == FLOWROUTE else msg.dst[1:]
        forced = self._accept_then_fail.get(d)
        if forced is not None:
            msg.outcome, msg.error_code = forced
        elif c.rate_undelivered or c.rate_failed:
            r = self._rng.random()
            if r < c.rate_undelivered:
                msg.outcome = "undelivered"
                msg.error_code = self._rng.choice(c.error_codes["undelivered"])
            elif r < c.rate_undelivered + c.rate_failed:
                msg.outcome = "failed"
                msg.error_code = self._rng.choice(c.error_codes["failed"])
        s["outcomes"][msg.outcome] += 1
        if c.record_messages:
            self.messages.append(msg)
        key = (msg.dst if msg.provider == PLIVO else "+" + msg.dst, msg.text)
        n = self.pair_counts.get(key, 0) + 1
        self.pair_counts[key] = n
        if n == 2:
            self.duplicate_pairs += 1
        if n >= 2:
            self.duplicate_sends += 1

    def _events(self, msg: Message) -> list[tuple]:
        c = self.config
        if msg.provider == PLIVO:
            events: list[tuple] = [("sent", None), (msg.outcome, msg.error_code)]
        else:
            events = [FLOWROUTE_SUBMIT]
            if msg.outcome == "delivered":
                if c.rate_buffered and self._rng.random() < c.rate_buffered:
                    events.append(FLOWROUTE_BUFFERED)
                events.append(FLOWROUTE_DELIVERED)
            else:
                code = msg.error_code
                events.append(
                    (
                        2,
                        FLOWROUTE_FAILURE_STATUS[msg.outcome],
                        str(code),
                        PLIVO_ERROR_DESCRIPTIONS.get(code, "Message delivery failed"),
                    )
                )
        if c.out_of_order and self._rng.random() < c.out_of_order:
            events.reverse()
        if c.duplicate_callbacks:
            doubled = []
            for ev in events:
                doubled.append(ev)
                if self._rng.random() < c.duplicate_callbacks:
                    doubled.append(ev)
                    self.stats_data["callbacks_duplicated"] += 1
            events = doubled
        return events

    async def _callbacks_for(self, msgs) -> None:
        c = self.config
        if not c.callbacks:
            return
        for msg in msgs:
            if not msg.url:
                continue
            events = self._events(msg)
            if c.early_callback and self._rng.random() < c.early_callback:
                if c.early_callback_mode == "all":
                    await self._send_events(msg, events)
                    continue
                await self._send_events(msg, events[:1])
                events = events[1:]
                if not events:
                    continue
            delay = c.callback_delay_s
            if c.callback_jitter_s:
                delay += self._rng.random() * c.callback_jitter_s
            task = asyncio.get_running_loop().create_task(self._deliver_later(msg, events, delay))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _deliver_later(self, msg: Message, events: list[tuple], delay: float) -> None:
        if delay > 0:
            await asyncio.sleep(delay)
        await self._send_events(msg, events)

    async def _send_events(self, msg: Message, events: list[tuple]) -> None:
        for ev in events:
            if msg.provider == PLIVO:
                await self._plivo_status(msg, ev)
            else:
                await self._flowroute_dlr(msg, ev)

    async def _plivo_status(self, msg: Message, ev: tuple) -> None:
        status, code = ev
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
        await self._post_callback(msg, PLIVO, msg.url, msg.method, params, status)

    async def _flowroute_dlr(self, msg: Message, ev: tuple) -> None:
        level, status, code, desc = ev
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
                "links": {"related": f"{self.url}/v2.1/messages/{msg.id}"},
            }
        }
        await self._post_callback(msg, FLOWROUTE, msg.url, "POST", payload, status)

    async def _post_callback(self, msg, provider, url, method, payload, status) -> None:
        s = self.stats_data
        c = self.config
        attempts = 1 + max(0, c.callback_retries)
        for attempt in range(attempts):
            if attempt:
                s["callbacks_retried"] += 1
                await asyncio.sleep(c.callback_retry_delay_s)
            code = await self._http_out(provider, url, method, payload)
            if code is not None and 200 <= code < 300:
                s["callbacks_sent"] += 1
                msg.last_status = status
                return
        s["callbacks_failed"] += 1

    async def _http_out(self, provider, url, method, payload, tamper=False) -> int | None:
        """Send one webhook; returns the HTTP status or None on a transport error."""
        status, _ = await self._http_out_full(provider, url, method, payload, tamper)
        return status

    async def _http_out_full(self, provider, url, method, payload, tamper=False):
        session = self._session
        if session is None:
            return None, "server not started"
        c = self.config
        timeout = self._cb_timeout
        target = _RawHTTP.target(url) if c.fast_http else None
        try:
            async with self._sem:
                if provider == PLIVO:
                    headers = plivo_signature_headers(method, url, payload, c.plivo_auth_token)
                    if tamper:
                        headers["X-Plivo-Signature-V3"] = _hmac_b64("wrong-token", url)
                        headers["X-Plivo-Signature-V2"] = _hmac_b64("wrong-token", url)
                    if target is not None:
                        if method == "GET":
                            host, port, netloc, path = target
                            sep = "&" if "?" in path else "?"
                            target = (host, port, netloc, path + sep + form_encode(payload))
                            data = b""
                        else:
                            headers["Content-Type"] = _FORM
                            data = form_encode(payload).encode()
                        status, raw = await self._raw.request(method, target, headers, data, c.callback_timeout_s)
                        self.stats_data["callback_status_codes"][status] += 1
                        return status, raw.decode("utf-8", "replace")
                    if method == "GET":
                        req = session.get(url, params=payload, headers=headers, timeout=timeout)
                    else:
                        headers["Content-Type"] = _FORM
                        data = form_encode(payload).encode()
                        req = session.post(url, data=data, headers=headers, timeout=timeout)
                else:
                    data = json.dumps(payload, separators=(",", ":")).encode()
                    if target is not None:
                        status, raw = await self._raw.request("POST", target, _JSON_HEADERS, data, c.callback_timeout_s)
                        self.stats_data["callback_status_codes"][status] += 1
                        return status, raw.decode("utf-8", "replace")
                    req = session.post(url, data=data, headers=_JSON_HEADERS, timeout=timeout)
                async with req as resp:
                    raw = await resp.read()
                    self.stats_data["callback_status_codes"][resp.status] += 1
                    return resp.status, raw.decode("utf-8", "replace")
        except (
            aiohttp.ClientError,
            TimeoutError,
            OSError,
            EOFError,
            ValueError,
            asyncio.LimitOverrunError,
        ) as e:
            self.stats_data["callback_status_codes"]["error"] += 1
            return None, f"{type(e).__name__}: {e}"

    # -- inbound ---------------------------------------------------------------------

    async def send_inbound(
        self,
        provider: str,
        from_: str,
        to: str,
        text: str = "",
        media_urls: list[Any] | None = None,
        url: str | None = None,
        message_intent: str | None = None,
        tamper_signature: bool = False,
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Post an inbound SMS/MMS to the app's webhook; returns its answer."""
        c = self.config
        media = list(media_urls or [])
        if provider == PLIVO:
            url = url or c.plivo_inbound_url
            mid = str(uuid.uuid4())
            mtype = "mms" if media else "sms"
            units = 1 if media else sms_units(text)
            form = {
                "From": _digits(from_),
                "To": _digits(to),
                "Type": mtype,
                "MessageUUID": mid,
                "Units": str(units),
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
                    form[f"Media{i + c.plivo_media_index_base}"] = m["url"] if isinstance(m, dict) else str(m)
            payload: Any = form
        elif provider == FLOWROUTE:
            url = url or c.flowroute_inbound_url
            mid = "mdr2-" + uuid.uuid4().hex
            payload = _flowroute_inbound(mid, from_, to, text, media)
        else:
            raise ValueError("provider must be 'plivo' or 'flowroute'")
        if extra:
            if provider == PLIVO:
                payload.update({k: str(v) for k, v in extra.items()})
            else:
                payload["data"]["attributes"].update(extra)
        if not url:
            raise ValueError(f"no url given and no {provider}_inbound_url configured")
        status, body = await self._http_out_full(provider, url, "POST", payload, tamper_signature)
        s = self.stats_data
        if status is not None and 200 <= status < 300:
            s["inbound_sent"] += 1
        else:
            s["inbound_failed"] += 1
        result = {"status": status, "body": body, "id": mid, "url": url, "payload": payload}
        if status is None:
            result["error"] = body
        return result

    # -- control API -------------------------------------------------------------------

    async def _control(self, request: web.BaseRequest, path: str) -> web.StreamResponse:
        name = path[len("/_fake/") :].rstrip("/")
        method = request.method
        try:
            if name == "health":
                return _json_response({"ok": True, "url": self.url})
            if name == "stats" and method == "GET":
                return _json_response(self.stats())
            if name == "messages" and method == "GET":
                q = request.query
                fields = tuple(f for f in q.get("fields", "").split(",") if f) or None
                limit = int(q["limit"]) if q.get("limit") else None
                msgs = self.list_messages(
                    fields,
                    provider=q.get("provider") or None,
                    dst=q.get("dst") or None,
                    offset=int(q.get("offset") or 0),
                    limit=limit,
                )
                if q.get("format") == "rows":
                    cols = list(fields or MESSAGE_FIELDS)
                    rows = [[m[f] for f in cols] for m in msgs]
                    return _json_response({"fields": cols, "rows": rows})
                return _json_response(msgs)
            if name == "duplicates" and method == "GET":
                return _json_response(self.duplicates())
            if name == "config":
                if method == "GET":
                    return _json_response(self.config.to_dict())
                if method == "POST":
                    body = await _read_json(request)
                    return _json_response(self.configure(**body))
            if name == "reset" and method == "POST":
                body = await _read_json(request, allow_empty=True)
                self.reset(config=bool(body.get("config", False)))
                return _json_response({"ok": True})
            if name == "drain" and method == "POST":
                body = await _read_json(request, allow_empty=True)
                left = await self.drain(float(body.get("timeout", 10.0)))
                return _json_response({"pending": left})
            if name == "inbound" and method == "POST":
                body = await _read_json(request)
                unknown = set(body) - {
                    "provider",
                    "from",
                    "to",
                    "text",
                    "media_urls",
                    "url",
                    "message_intent",
                    "tamper_signature",
                    "extra",
                }
                if unknown:
                    raise ValueError(f"unknown inbound key(s): {', '.join(sorted(unknown))}")
                result = await self.send_inbound(
                    body.get("provider", ""),
                    body.get("from", ""),
                    body.get("to", ""),
                    body.get("text", ""),
                    body.get("media_urls"),
                    body.get("url"),
                    body.get("message_intent"),
                    bool(body.get("tamper_signature", False)),
                    body.get("extra"),
                )
                return _json_response(result)
        except (ValueError, TypeError, KeyError) as e:
            return _json_response({"error": str(e)}, status=400)
        return _json_response({"error": f"unknown control endpoint {method} {path}"}, 404)


_NANP = re.compile(r"^1\d{10}$")


class _RawHTTP:
    """Minimal HTTP/1.1 client with keep-alive pooling, for plain-http webhooks only.

    Handles Content-Length, chunked and read-until-close bodies; a pooled connection that
    the peer closed while idle is retried once on a fresh connection.
    """

    USER_AGENT = "smsportal-fake-provider/1.0"

    def __init__(self, max_idle_per_host: int = 256):
        self._idle: dict[tuple[str, int], list[tuple[asyncio.StreamReader, Any]]] = {}
        self._max_idle = max_idle_per_host

    @staticmethod
    def target(url: str) -> tuple[str, int, str, str] | None:
        """(host, port, Host header, request target) or None when not eligible."""
        try:
            parts = urlsplit(url)
            port = parts.port or 80
        except ValueError:
            return None
        if parts.scheme != "http" or not parts.hostname or "@" in parts.netloc:
            return None
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        if not path.isascii() or any(ch in path for ch in " \t\r\n"):
            return None
        return parts.hostname, port, parts.netloc, path

    def close(self) -> None:
        for conns in self._idle.values():
            for _, writer in conns:
                writer.close()
        self._idle.clear()

    async def request(
        self,
        method: str,
        target: tuple[str, int, str, str],
        headers: dict[str, str],
        body: bytes,
        timeout: float,
    ) -> tuple[int, bytes]:
        host, port, netloc, path = target
        lines = [
            f"{method} {path} HTTP/1.1",
            f"Host: {netloc}",
            f"User-Agent: {self.USER_AGENT}",
            f"Content-Length: {len(body)}",
        ]
        lines.extend(f"{k}: {v}" for k, v in headers.items())
        data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
        key = (host, port)
        async with asyncio.timeout(timeout):
            while True:
                reader, writer = self._pooled(key)
                reused = reader is not None
                if not reused:
                    reader, writer = await asyncio.open_connection(host, port)
                try:
                    writer.write(data)
                    status, keep, payload = await self._read_response(reader, method)
                except (ConnectionError, asyncio.IncompleteReadError) as e:
                    writer.close()
                    stale = isinstance(e, ConnectionError) or not e.partial
                    if reused and stale:
                        continue  # the peer closed the idle connection: try another
                    raise
                except BaseException:
                    writer.close()
                    raise
                if keep:
                    conns = self._idle.setdefault(key, [])
                    if len(conns) < self._max_idle:
                        conns.append((reader, writer))
                    else:
                        writer.close()
                else:
                    writer.close()
                return status, payload

    def _pooled(self, key: tuple[str, int]):
        idle = self._idle.get(key)
        while idle:
            reader, writer = idle.pop()
            if reader.at_eof() or writer.is_closing():
                writer.close()
                continue
            return reader, writer
        return None, None

    @staticmethod
    async def _read_response(reader: asyncio.StreamReader, method: str):
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head[:-4].decode("latin-1").split("\r\n")
            version, _, rest = lines[0].partition(" ")
            status = int(rest[:3])
            if not 100 <= status < 200 or status == 101:
                break
        hdrs: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            hdrs[name.strip().lower()] = value.strip()
        conn = hdrs.get("connection", "").lower()
        keep = conn != "close" if version == "HTTP/1.1" else conn == "keep-alive"
        if method == "HEAD" or status in (204, 304):
            return status, keep, b""
        if "chunked" in hdrs.get("transfer-encoding", "").lower():
            chunks = []
            while True:
                size = int((await reader.readline()).split(b";")[0].strip(), 16)
                if size == 0:
                    while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append((await reader.readexactly(size + 2))[:-2])
            return status, keep, b"".join(chunks)
        if "content-length" in hdrs:
            return status, keep, await reader.readexactly(int(hdrs["content-length"]))
        return status, False, await reader.read()


async def _read_json(request: web.BaseRequest, allow_empty: bool = False) -> dict[str, Any]:
    raw = await request.read()
    if not raw.strip():
        if allow_empty:
            return {}
        raise ValueError("a JSON object body is required")
    body = json.loads(raw)
    if not isinstance(body, dict):
        raise ValueError("a JSON object body is required")
    return body


def _flowroute_inbound(mid: str, from_: str, to: str, text: str, media: list[Any]) -> dict:
    included = []
    for m in media:
        if isinstance(m, dict):
            murl = m["url"]
            mime = m.get("mime_type")
            size = m.get("file_size", 0)
            fname = m.get("file_name")
        else:
            murl, mime, size, fname = str(m), None, 0, None
        fname = fname or (urlsplit(murl).path.rsplit("/", 1)[-1] or "media")
        mime = mime or mimetypes.guess_type(fname)[0] or "application/octet-stream"
        included.append(
            {
                "type": "media",
                "id": uuid.uuid4().hex,
                "attributes": {
                    "file_name": fname,
                    "file_size": int(size),
                    "mime_type": mime,
                    "url": murl,
                },
                "links": {"self": murl},
            }
        )
    ucs2 = not is_gsm7(text)
    payload: dict[str, Any] = {
        "data": {
            "type": "message",
            "id": mid,
            "attributes": {
                "body": text,
                "from": _digits(from_),
                "to": _digits(to),
                "direction": "inbound",
                "is_mms": bool(media),
                "message_encoding": 8 if ucs2 else 0,
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
    return payload


# --------------------------------------------------------------------------------------
# Threaded wrapper for sync test code
# --------------------------------------------------------------------------------------


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop's loop when installed, else the default one."""
    try:
        import uvloop

        return uvloop.new_event_loop()
    except ImportError:
        return asyncio.new_event_loop()


class FakeProvider:
    """The fake provider in a background thread, for sync code (tests).

    >>> fp = FakeProvider(latency_ms=5, seed=1).start()
    >>> fp.url  # 'http://127.0.0.1:PORT'
    >>> fp.stop()
    """

    def __init__(self, config: FakeConfig | None = None, *, host="127.0.0.1", port=0, **kw):
        self._kw = kw
        self._config = config
        self._host = host
        self._port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self.server: FakeProviderServer | None = None

    # lifecycle
    def start(self) -> FakeProvider:
        if self._thread is not None:
            return self
        ready = threading.Event()
        error: list[BaseException] = []

        def run() -> None:
            loop = new_event_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop
            try:
                self.server = FakeProviderServer(self._config, **self._kw)
                loop.run_until_complete(self.server.start(self._host, self._port))
            except BaseException as e:
                error.append(e)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        self._thread = threading.Thread(target=run, name="fake-provider", daemon=True)
        self._thread.start()
        ready.wait(30)
        if error:
            self._thread = None
            raise error[0]
        return self

    def stop(self) -> None:
        if self._thread is None or self._loop is None:
            return
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self.server.stop(), self._loop).result(15)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(15)
        self._thread = None

    def __enter__(self) -> FakeProvider:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self.server is not None, "not started"
        return self.server.url

    @property
    def config(self) -> FakeConfig:
        assert self.server is not None, "not started"
        return self.server.config

    @property
    def plivo_send_url(self) -> str:
        return f"{self.url}/v1/Account/{self.config.plivo_auth_id}/Message/"

    @property
    def flowroute_send_url(self) -> str:
        return f"{self.url}/v2.1/messages"

    # thread-safe calls into the loop
    def _call(self, fn, *args, **kw):
        assert self._loop is not None and self.server is not None, "not started"

        async def wrapper():
            result = fn(*args, **kw)
            if asyncio.iscoroutine(result):
                result = await result
            return result

        return asyncio.run_coroutine_threadsafe(wrapper(), self._loop).result()

    def messages(self, fields=None, provider=None, dst=None, offset=0, limit=None) -> list[dict]:
        if isinstance(fields, str):
            fields = tuple(f for f in fields.split(",") if f)
        return self._call(
            self.server.list_messages,
            tuple(fields) if fields else None,
            provider,
            dst,
            offset,
            limit,
        )

    def stats(self) -> dict[str, Any]:
        return self._call(self.server.stats)

    def duplicates(self) -> list[dict[str, Any]]:
        return self._call(self.server.duplicates)

    def configure(self, **kw: Any) -> dict[str, Any]:
        return self._call(self.server.configure, **kw)

    def reset(self, config: bool = False) -> None:
        self._call(self.server.reset, config)

    def drain(self, timeout: float = 10.0) -> int:
        return self._call(self.server.drain, timeout)

    def send_inbound(
        self,
        provider: str,
        from_: str,
        to: str,
        text: str = "",
        media_urls: list[Any] | None = None,
        url: str | None = None,
        message_intent: str | None = None,
        tamper_signature: bool = False,
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        return self._call(
            self.server.send_inbound,
            provider,
            from_,
            to,
            text,
            media_urls,
            url,
            message_intent,
            tamper_signature,
            extra,
        )
