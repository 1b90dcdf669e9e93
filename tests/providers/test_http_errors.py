"""The one classification of provider answers and network failures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import aiohttp
import httpx
import pytest

from providers.errors import (
    AuthenticationFailed,
    InvalidRecipient,
    OutcomeUnknown,
    PermanentError,
    RateLimited,
    RecipientOptedOut,
    TransientError,
)
from providers.http_errors import NOTHING_SENT, error_detail, provider_error, retry_after_seconds


def answer(status: int, **headers) -> httpx.Response:
    return httpx.Response(status, headers=headers)


@pytest.mark.parametrize("status", [200, 201, 202, 204, 206, 207])
def test_2xx_is_accepted(status):
    assert provider_error(answer(status)) is None


@pytest.mark.parametrize(
    ("status", "detail", "kind"),
    [
        (500, "", TransientError),
        (502, "bad gateway", TransientError),
        (503, "", TransientError),
        (408, "", TransientError),
        (401, "Authentication credentials invalid", AuthenticationFailed),
        (400, "invalid destination number: 123", InvalidRecipient),
        (400, "dst parameter not present", InvalidRecipient),
        (422, "'to' must be an 11-digit NANP number", InvalidRecipient),
        (400, "text parameter not present", PermanentError),
        (400, "failed to parse body", PermanentError),  # "to" alone is not about the destination
        (403, "geo permission not enabled", PermanentError),
        (404, "", PermanentError),
        (409, "", PermanentError),
        (400, "This number has opted out of receiving messages", RecipientOptedOut),
        (400, "recipient replied STOP", RecipientOptedOut),
        (302, "", PermanentError),
    ],
)
def test_error_kinds(status, detail, kind):
    error = provider_error(answer(status), detail=detail, code="x1")

    assert type(error) is kind
    assert error.http_status == status and error.code == "x1"
    assert error.permanent == (kind not in (TransientError, RateLimited))
    if detail:
        assert detail in error.message


def test_429_carries_retry_after():
    error = provider_error(answer(429, **{"Retry-After": "12"}))

    assert type(error) is RateLimited and error.retry_after == 12 and not error.permanent


def test_429_without_retry_after_still_rate_limited():
    error = provider_error(answer(429))

    assert type(error) is RateLimited and error.retry_after is None


@pytest.mark.parametrize(
    ("header", "low", "high"),
    [("3", 3, 3), ("0.5", 0.5, 0.5), ("-4", 0, 0), ("999999", 3600, 3600), (None, None, None), ("soon", None, None)],
)
def test_retry_after_seconds(header, low, high):
    value = retry_after_seconds(header)
    if low is None:
        assert value is None
    else:
        assert low <= value <= high


def test_retry_after_as_http_date():
    when = datetime.now(UTC) + timedelta(seconds=90)

    assert 80 <= retry_after_seconds(format_datetime(when, usegmt=True)) <= 90


def _mapped(original: BaseException, to: type[BaseException]) -> BaseException:
    """What the aiohttp transport raises: an httpx error caused by the aiohttp one."""
    try:
        raise to(str(original)) from original
    except BaseException as exc:
        return exc


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (httpx.ReadTimeout("slow"), "read_timeout"),
        (httpx.ConnectTimeout("slow"), "connect_timeout"),
        (httpx.PoolTimeout("busy"), "connect_timeout"),
        (TimeoutError(), "timeout"),
        (httpx.ConnectError("refused"), "connect_error"),
        (ConnectionRefusedError(), "refused"),
        (httpx.RemoteProtocolError("dropped"), "disconnected"),
        (aiohttp.ServerDisconnectedError(), "disconnected"),
        (ConnectionResetError(), "reset"),
        # The aiohttp transport maps a dropped connection to httpx.ConnectTimeout: the cause tells.
        (_mapped(aiohttp.ServerDisconnectedError(), httpx.ConnectTimeout), "disconnected"),
        (_mapped(aiohttp.SocketTimeoutError(), httpx.ReadTimeout), "read_timeout"),
        (_mapped(aiohttp.ConnectionTimeoutError(), httpx.TimeoutException), "connect_timeout"),
        (_mapped(aiohttp.ClientOSError(104, "reset by peer"), httpx.ConnectTimeout), "reset"),
    ],
)
def test_network_failures_say_what_happened_and_only_nothing_sent_is_retried(exc, code):
    error = provider_error(exc)

    # A failure that may come after the provider accepted the message is never simply sent again.
    assert type(error) is (TransientError if code in NOTHING_SENT else OutcomeUnknown)
    assert error.code == code and error.http_status is None
    assert len(error.message) < 80  # a short text that groups alike failures


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        ('{"api_id": "4f1c", "error": "internal error"}', "application/json", ("", "internal error")),
        (
            '{"errors": [{"id": "9a", "status": 503, "title": "Service Unavailable", "detail": "try later"}]}',
            "application/vnd.api+json",
            ("", "try later"),
        ),
        ('{"errors": [{"code": "E42", "title": "Bad number"}]}', "application/json", ("E42", "Bad number")),
        ('{"error": {"code": 21, "message": "queue full"}}', "application/json", ("21", "queue full")),
        ('{"api_id": "4f1c"}', "application/json", ("", "")),
        ("<html><body>502 Bad Gateway</body></html>", "text/html", ("", "")),
        ("upstream busy", "text/plain", ("", "upstream busy")),
    ],
)
def test_error_bodies_become_a_code_and_a_short_text_never_the_raw_body(body, content_type, expected):
    response = httpx.Response(503, content=body.encode(), headers={"Content-Type": content_type})

    assert error_detail(response) == expected
