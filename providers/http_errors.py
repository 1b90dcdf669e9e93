"""The one place where an HTTP answer or a network failure becomes a provider error.

RapidPro-style: every backend hands its raw result here, so "what is retried"
is decided once for every provider.

========================  ==========================================
result                    error
========================  ==========================================
2xx                       none (accepted)
network error, nothing    :class:`TransientError` (code: what happened, below)
sent (``NOTHING_SENT``)
network error that may    :class:`OutcomeUnknown`: never sent again blindly (below)
have sent
408, 5xx                  :class:`TransientError`
429                       :class:`RateLimited` (``retry_after`` from the header)
401                       :class:`AuthenticationFailed` (pauses the campaign)
400/422 about the number  :class:`InvalidRecipient`
text says opted out       :class:`RecipientOptedOut`
other 4xx (403 geo, ...)  :class:`PermanentError`
========================  ==========================================

Every error is stored as a short code and a short text, so alike failures group together on
the campaign page: an HTTP refusal's code is its status (``"503"``) unless the provider gives
its own, and its text is the provider's message parsed out of the body (never the raw body).
Network failures say what really happened, found on the exception's cause chain (the aiohttp
transport maps a dropped connection to ``httpx.ConnectTimeout``):

===================  ==========================================================
code                 what happened
===================  ==========================================================
``connect_timeout``  no connection within ``SMS_HTTP_CONNECT_TIMEOUT``: nothing was sent
``refused``          the connection was refused: nothing was sent
``dns``              the provider's host name did not resolve: nothing was sent
``read_timeout``     sent, but no answer within ``SMS_HTTP_TIMEOUT`` (may have been accepted)
``disconnected``     sent, the provider closed the connection without answering
``reset``            the connection was reset
``timeout``          a timeout of another kind
``network``          any other network failure
===================  ==========================================================

Only the first three (and ``connect_error``) prove nothing reached the provider: retried as any
transient error. Every other failure may come after the provider accepted the message, and
neither Plivo nor Flowroute has an idempotency key, so sending again could deliver twice: it is
:class:`OutcomeUnknown`, for a single send as for a group. The delivery report settles it, and
a message that hears none goes out again once (messaging.sweeper, after the provider's window).
"""

from __future__ import annotations

import errno
import re
import socket
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TypedDict

import aiohttp
import httpx

from providers.errors import (
    AuthenticationFailed,
    InvalidRecipient,
    OutcomeUnknown,
    PermanentError,
    ProviderError,
    RateLimited,
    RecipientOptedOut,
    TransientError,
)

_OPTED_OUT = re.compile(r"opt(ed)?[\s_-]?out|unsubscribed|\bstop\b|blacklist|blocklist", re.IGNORECASE)
_ABOUT_DESTINATION = re.compile(
    r"\bdst\b|destination|recipient|['\"]to['\"]|\bto (number|parameter|field)", re.IGNORECASE
)
_MAX_RETRY_AFTER = 3600.0
# What a request on the shared client can raise besides an answer. The aiohttp
# transport maps most aiohttp errors to httpx ones, but not all of them.
TRANSPORT_ERRORS = (httpx.HTTPError, aiohttp.ClientError, TimeoutError, OSError)
# transport_failure codes of a request that never reached the provider (the others may have).
NOTHING_SENT = frozenset({"connect_timeout", "refused", "dns", "connect_error"})


class _ErrorFields(TypedDict):
    code: str
    http_status: int


def provider_error(result: httpx.Response | BaseException, *, detail: str = "", code: str = "") -> ProviderError | None:
    """Classify ``result``; ``None`` means the provider accepted the request. A network failure
    (``result`` an exception) is :class:`OutcomeUnknown` unless it proves nothing was sent.

    ``detail`` and ``code`` are the provider's own error text and code, which
    the backend extracts from the body; they are stored on the message.
    """
    if isinstance(result, BaseException):
        code, text = transport_failure(result)
        # Only a request that never reached the provider may simply be sent again.
        return TransientError(text, code=code) if code in NOTHING_SENT else OutcomeUnknown(text, code=code)
    status = result.status_code
    if 200 <= status < 300:
        return None
    text = (detail or result.reason_phrase or f"HTTP {status}")[:255]
    kwargs: _ErrorFields = {"code": code, "http_status": status}
    if status == 429:
        return RateLimited(text, retry_after=retry_after_seconds(result.headers.get("Retry-After")), **kwargs)
    if status == 408 or status >= 500:
        return TransientError(text, **kwargs)
    if status == 401:
        return AuthenticationFailed(text, **kwargs)
    if _OPTED_OUT.search(text):
        return RecipientOptedOut(text, **kwargs)
    if status in (400, 422) and _ABOUT_DESTINATION.search(text):
        return InvalidRecipient(text, **kwargs)
    if 400 <= status < 500:
        return PermanentError(text, **kwargs)
    # 1xx/3xx: we never follow redirects, so the request went nowhere useful.
    return PermanentError(f"unexpected HTTP {status}: {text}"[:255], **kwargs)


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen and len(seen) < 8:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def transport_failure(exc: BaseException) -> tuple[str, str]:
    """``(code, text)`` for a request that got no HTTP answer: what really happened, first match wins."""
    chain = _chain(exc)
    os_errors = [e for e in chain if isinstance(e, OSError)]
    os_errors += [e.os_error for e in chain if isinstance(e, aiohttp.ClientConnectorError)]

    errnos = {e.errno for e in os_errors if e.errno}

    def has(*kinds: type[BaseException]) -> bool:
        return any(isinstance(e, kinds) for e in chain) or any(isinstance(e, kinds) for e in os_errors)

    if has(aiohttp.ConnectionTimeoutError, httpx.PoolTimeout):
        return "connect_timeout", "connect timeout: no connection to the provider, nothing sent"
    if has(aiohttp.ClientConnectorDNSError, socket.gaierror):
        return "dns", "the provider's host name did not resolve, nothing sent"
    if has(ConnectionRefusedError) or errno.ECONNREFUSED in errnos:
        return "refused", "connection refused by the provider, nothing sent"
    if has(aiohttp.SocketTimeoutError, httpx.ReadTimeout, httpx.WriteTimeout):
        return "read_timeout", "read timeout: no answer from the provider in time"
    if has(aiohttp.ServerDisconnectedError, httpx.RemoteProtocolError):
        return "disconnected", "the provider closed the connection without an answer"
    if has(ConnectionResetError, BrokenPipeError, aiohttp.ClientConnectionResetError) or errnos & {
        errno.ECONNRESET,
        errno.EPIPE,
    }:
        return "reset", "the connection to the provider was reset"
    if has(httpx.ConnectTimeout):  # only when nothing above explains it
        return "connect_timeout", "connect timeout: no connection to the provider, nothing sent"
    if has(httpx.TimeoutException, TimeoutError, aiohttp.ServerTimeoutError):
        return "timeout", f"timeout: {type(exc).__name__}"
    if has(httpx.ConnectError, aiohttp.ClientConnectorError):
        return "connect_error", "could not connect to the provider, nothing sent"
    return "network", f"network error: {type(exc).__name__}"


def error_detail(response: httpx.Response) -> tuple[str, str]:
    """The provider's own ``(code, text)`` from a refusal's body, whatever its JSON shape.

    Knows Flowroute's ``{"errors": [{"code", "title", "detail"}]}``, Plivo's ``{"error": …}``
    and ``{"message"|"detail": …}``; anything else gives the reason phrase, never the raw body.
    """
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip()
        # A short plain-text answer is a message; HTML or a long body is not.
        if text and len(text) <= 200 and "<" not in text and "\n" not in text:
            return "", text
        return "", ""
    return _from_json(body)


def _from_json(body: object) -> tuple[str, str]:
    if isinstance(body, list) and body:
        return _from_json(body[0])
    if not isinstance(body, dict):
        return "", ""
    errors = body.get("errors")
    if isinstance(errors, list) and errors:
        return _from_json(errors[0])
    code = body.get("code") or body.get("error_code") or ""
    for key in ("detail", "message", "error", "title", "error_message"):
        value = body.get(key)
        if isinstance(value, dict | list):
            inner_code, inner_text = _from_json(value)
            if inner_text:
                return str(code or inner_code)[:20], inner_text
        elif value not in (None, ""):
            return str(code)[:20], " ".join(str(value).split())[:255]
    return str(code)[:20], ""


def retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` as seconds (either form the RFC allows); None when absent or garbled."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return min(max(seconds, 0.0), _MAX_RETRY_AFTER)
