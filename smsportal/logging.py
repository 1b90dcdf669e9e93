"""Log formatting: JSON lines in production; phone numbers and webhook URL secrets masked everywhere.

Masking covers the message, its arguments and tracebacks (both formats), and
gunicorn's access log (:mod:`smsportal.accesslog`). It masks phone numbers
only: ids that merely contain digits (task UUIDs, nonces longer than any
number) are left alone.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from typing import Any

# E.164 or national-looking runs of 7-15 digits, optionally with a leading +. Not part of a
# larger token: a run touching letters, underscores or hyphenated parts (a UUID's "1156-74f2") is an id.
_PHONE = re.compile(r"(?<![\w-])\+?\d[\d\s().-]{5,}\d(?![\w-])")
# The same in URLs: separators may be percent-encoded, "+" may be %2B (or a space in a query).
# A national number may open with its area code in parentheses: "(415) 555-…" is "%28415%29%20555-…".
_URL_PHONE = re.compile(r"(?<![\w%-])(?:%2[bB]|\+)?(?:%28|\()?\d(?:[\d().+-]|%2[0389bBdD]){5,}\d(?![\w-])")
_PERCENT = re.compile(r"%[0-9A-Fa-f]{2}")
# /webhooks/<provider>/<secret>/…: the second segment is the provider's URL secret.
_WEBHOOK_SECRET = re.compile(r"(/webhooks/[^/\s?]+/)[^/\s?]+(?=/)")
# A date ("2026-12-02", "2026-12-02 04" before a time's colon) has the shape of a number but is not one.
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}(?:[ T]\d{2})?")
_KEEP = 4
_MIN_DIGITS, _MAX_DIGITS = 7, 15  # E.164 numbers have at most 15 digits


def _masked(match: re.Match[str], digits: str, prefix: str) -> str:
    if len(digits) < _MIN_DIGITS:
        return match.group(0)
    return prefix + "*" * (len(digits) - _KEEP) + digits[-_KEEP:]


def mask_phone(text: str) -> str:
    """Replace every phone-like run with bullets, keeping the last few digits."""

    def _mask(match: re.Match[str]) -> str:
        run = match.group(0)
        if _DATE.fullmatch(run):
            return run
        digits = re.sub(r"\D", "", run)
        if len(digits) > _MAX_DIGITS:
            if not any(c.isspace() for c in run):
                return run  # one long id, not a number
            return re.sub(r"\S+", lambda part: mask_phone(part.group(0)), run)  # several numbers in a row
        return _masked(match, digits, "+" if run.startswith("+") else "")

    return _PHONE.sub(_mask, text)


def mask_url(url: str) -> str:
    """A URL (or a request line) with the webhook secret in its path and phone numbers in its query masked."""
    path, sep, query = url.partition("?")
    return mask_webhook_secret(path) + sep + mask_query(query)


def mask_query(query: str) -> str:
    """A query string with its phone numbers masked, however they are encoded."""

    def _mask(match: re.Match[str]) -> str:
        run = match.group(0)
        digits = re.sub(r"\D", "", _PERCENT.sub("", run))
        if len(digits) > _MAX_DIGITS:
            return run
        prefix = run[:3] if run[:3].upper() == "%2B" else "+" if run.startswith("+") else ""
        return _masked(match, digits, prefix)

    return _URL_PHONE.sub(_mask, query)


def mask_webhook_secret(text: str) -> str:
    """``/webhooks/<provider>/<secret>/…`` with the secret replaced by ``****``."""
    return _WEBHOOK_SECRET.sub(r"\1****", text)


def mask_log_text(text: str) -> str:
    return mask_phone(mask_webhook_secret(text))


class MaskPhoneNumbersFilter(logging.Filter):
    """Masks phone numbers and webhook URL secrets in the rendered message and its arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not hide the log line
            message = str(record.msg)
        record.msg = mask_log_text(message)
        record.args = None
        return True


class MaskingTextFormatter(logging.Formatter):
    """The plain-text format; tracebacks and stack dumps are masked too (the filter sees only the message)."""

    def formatException(self, ei: Any) -> str:
        return mask_log_text(super().formatException(ei))

    def formatStack(self, stack_info: str) -> str:
        return mask_log_text(super().formatStack(stack_info))


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log shippers."""

    _skip = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in self._skip and not key.startswith("_"):
                payload[key] = _masked_value(value)
        if record.exc_info:
            payload["exc"] = mask_log_text(self.formatException(record.exc_info))
        if record.stack_info:
            payload["stack"] = mask_log_text(self.formatStack(record.stack_info))
        return json.dumps(payload, default=str)


def _masked_value(value: Any) -> Any:
    """An ``extra`` value for the JSON line, masked: Django's ``request`` extra prints its path."""
    if isinstance(value, bool | int | float) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): _masked_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_masked_value(v) for v in value]
    return mask_log_text(str(value))
