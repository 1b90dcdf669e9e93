"""The fake provider's settings that every provider shares (faults, outcomes, callbacks).

Each provider module adds its own settings (credentials, limits, inbound URL) as a small
dataclass; :class:`devtools.fake_provider.registry.FakeConfig` puts them all together. Every
setting can be changed at runtime, over the control API and as a command-line flag.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import field
from typing import Any

from .httputil import digits

# Error codes (Plivo's ErrorCode numbering, which every provider of the fake reports) picked
# uniformly for each non-delivered outcome.
DEFAULT_ERROR_CODES: dict[str, list[int]] = {
    "undelivered": [80, 20, 70],
    "failed": [30, 200, 50, 90, 100],
}

ERROR_DESCRIPTIONS = {
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


def rate(default: float = 0.0) -> Any:
    """A probability in [0, 1] (``True`` means 1)."""
    return field(default=default, metadata={"rate": True})


def coerced_by(coerce: Callable[[str, Any], Any]) -> dict[str, Any]:
    """Field metadata for a setting whose value is not simply ``type(default)(value)``."""
    return {"coerce": coerce}


def optional_str(name: str, value: Any) -> str | None:
    return value or None


def _optional_int(name: str, value: Any) -> int | None:
    return None if value is None or value == "" else int(value)


def _int_list(name: str, value: Any) -> list[int]:
    return [int(c) for c in value]


def _dict(name: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"{name} must be a dict")
    return dict(value)


def _error_codes(name: str, value: Any) -> dict[str, list[int]]:
    merged = {k: list(v) for k, v in DEFAULT_ERROR_CODES.items()}
    merged.update({str(k): [int(c) for c in v] for k, v in _dict(name, value).items()})
    return merged


def _to_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.lower() in ("1", "true", "yes", "on")
    return bool(value)


@dataclasses.dataclass
class CoreConfig:
    # latency added to every send (before answering)
    latency_ms: float = 0.0
    latency_jitter_ms: float = 0.0
    # transport / HTTP faults (one draw per authenticated send; never recorded as accepted)
    rate_5xx: float = rate()
    codes_5xx: list[int] = field(default_factory=lambda: [500, 502, 503], metadata=coerced_by(_int_list))
    rate_429: float = rate()
    retry_after: int = 1
    rate_timeout: float = rate()
    timeout_hold_s: float = 30.0
    rate_drop: float = rate()
    # ambiguous faults: the message IS accepted (recorded, callbacks sent) but the
    # client does not get the answer in time (held timeout_hold_s) / at all (dropped)
    rate_accept_timeout: float = rate()
    rate_accept_drop: float = rate()
    # delivery outcomes (the rest is delivered)
    rate_undelivered: float = rate()
    rate_failed: float = rate()
    error_codes: dict[str, list[int]] = field(
        default_factory=lambda: {k: list(v) for k, v in DEFAULT_ERROR_CODES.items()},
        metadata=coerced_by(_error_codes),
    )
    # per-number behaviour, keys are numbers (compared by digits only)
    # fail_numbers: {"+15551230000": {"http": 400, "error": "invalid destination"}}
    fail_numbers: dict[str, Any] = field(default_factory=dict, metadata=coerced_by(_dict))
    # accept_then_fail: {"+15551230001": {"status": "failed", "error_code": 30}} or code
    accept_then_fail: dict[str, Any] = field(default_factory=dict, metadata=coerced_by(_dict))
    # status callbacks
    callbacks: bool = True
    callback_delay_s: float = 0.2
    callback_jitter_s: float = 0.0
    callback_timeout_s: float = 10.0
    callback_retries: int = 0
    callback_retry_delay_s: float = 0.5
    callback_concurrency: int = 100
    duplicate_callbacks: float = rate()  # probability that each callback is sent twice
    out_of_order: float = rate()  # probability that a message's callbacks come reversed
    early_callback: float = rate()  # probability that callbacks come before the 202
    early_callback_mode: str = "all"  # "all": whole sequence early, "first": only first
    # misc
    seed: int | None = field(default=None, metadata=coerced_by(_optional_int))
    record_messages: bool = True
    # send plain-http webhooks with a minimal keep-alive HTTP/1.1 client (about 3x less
    # CPU than aiohttp's client); https URLs always use the aiohttp ClientSession
    fast_http: bool = True

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def rate_fields(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls) if f.metadata.get("rate"))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def update(self, **kw: Any) -> None:
        """Partial update with validation; raises ValueError (nothing changed) on error."""
        fields = {f.name: f for f in dataclasses.fields(self)}
        unknown = sorted(set(kw) - set(fields))
        if unknown:
            raise ValueError(f"unknown config key(s): {', '.join(unknown)}")
        new = dataclasses.replace(self)
        for key, value in kw.items():
            setattr(new, key, _coerce(fields[key], value))
        new.validate()
        for key in kw:
            setattr(self, key, getattr(new, key))

    def validate(self) -> None:
        for name in self.rate_fields():
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"{name} must be within [0, 1], got {v}")
        if self.fault_total() > 1.0 + 1e-9:
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
        self.fail_number_specs()
        self.accept_then_fail_specs()

    def fault_total(self) -> float:
        return (
            self.rate_drop
            + self.rate_timeout
            + self.rate_5xx
            + self.rate_429
            + self.rate_accept_timeout
            + self.rate_accept_drop
        )

    def fail_number_specs(self) -> dict[str, tuple[int, str]]:
        """fail_numbers by digits: (HTTP status, error text)."""
        return {digits(k): _fail_number_spec(k, v) for k, v in self.fail_numbers.items()}

    def accept_then_fail_specs(self) -> dict[str, tuple[str, int]]:
        """accept_then_fail by digits: (outcome, error code)."""
        return {digits(k): _accept_then_fail_spec(k, v) for k, v in self.accept_then_fail.items()}


def _coerce(field: dataclasses.Field, value: Any) -> Any:
    custom = field.metadata.get("coerce")
    if custom is not None:
        return custom(field.name, value)
    default = field.default if field.default is not dataclasses.MISSING else field.default_factory()
    if isinstance(default, bool):
        return _to_bool(value)
    if isinstance(default, int | float):
        return type(default)(value)
    return str(value)


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
