"""Log formatting: JSON lines in production, and phone numbers masked everywhere."""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime

# E.164 or national-looking runs of 7+ digits, optionally with a leading +.
_PHONE = re.compile(r"(?<![\w-])\+?\d[\d\s().-]{5,}\d(?!\w)")
_KEEP = 4


def mask_phone(text: str) -> str:
    """Replace every phone-like run with bullets, keeping the last few digits."""

    def _mask(match: re.Match[str]) -> str:
        digits = re.sub(r"\D", "", match.group(0))
        if len(digits) < 7:
            return match.group(0)
        prefix = "+" if match.group(0).startswith("+") else ""
        return prefix + "*" * (len(digits) - _KEEP) + digits[-_KEEP:]

    return _PHONE.sub(_mask, text)


class MaskPhoneNumbersFilter(logging.Filter):
    """Masks phone numbers in the rendered message and its arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not hide the log line
            message = str(record.msg)
        record.msg = mask_phone(message)
        record.args = None
        return True


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
                payload[key] = mask_phone(str(value)) if isinstance(value, str) else value
        if record.exc_info:
            payload["exc"] = mask_phone(self.formatException(record.exc_info))
        return json.dumps(payload, default=str)
