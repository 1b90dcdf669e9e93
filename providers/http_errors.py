"""The one place where an HTTP answer or a network failure becomes a provider error.

RapidPro-style: every backend hands its raw result here, so "what is retried"
is decided once for every provider.

========================  ==========================================
result                    error
========================  ==========================================
2xx                       none (accepted)
network error, timeout    :class:`TransientError`
408, 5xx                  :class:`TransientError`
429                       :class:`RateLimited` (``retry_after`` from the header)
401                       :class:`AuthenticationFailed` (pauses the campaign)
400/422 about the number  :class:`InvalidRecipient`
text says opted out       :class:`RecipientOptedOut`
other 4xx (403 geo, ...)  :class:`PermanentError`
========================  ==========================================
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TypedDict

import aiohttp
import httpx

from providers.errors import (
    AuthenticationFailed,
    InvalidRecipient,
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


class _ErrorFields(TypedDict):
    code: str
    http_status: int


def provider_error(result: httpx.Response | BaseException, *, detail: str = "", code: str = "") -> ProviderError | None:
    """Classify ``result``; ``None`` means the provider accepted the request.

    ``detail`` and ``code`` are the provider's own error text and code, which
    the backend extracts from the body; they are stored on the message.
    """
    if isinstance(result, BaseException):
        if isinstance(result, httpx.TimeoutException | TimeoutError | aiohttp.ServerTimeoutError):
            return TransientError(f"timeout: {type(result).__name__}", code="timeout")
        return TransientError(f"network error: {type(result).__name__}: {result}"[:255], code="network")
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
