"""Every SMS provider smsportal can send through: one entry each, and the only list of them.

An entry says what the provider is called, what it can do, what its
delivery-report error codes mean, which settings it reads and where its
backend and webhooks live. The rest of the product asks here instead of
naming a provider: model and form choices, the body and media limits, which
numbers can reach a destination, whether a failed report means the recipient
opted out, the per-provider settings.

Pure Python (no Django), so settings.py can read it. Adding a provider is a
backend module, a webhook module, a fake-provider module and one entry in
``PROVIDERS``; docs/providers.md lists the steps.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

_NANP = re.compile(r"^\+1\d{10}$")

# Used when no provider states a limit of its own.
DEFAULT_MAX_BODY_CHARS = 1600
DEFAULT_MAX_MEDIA = 10
# A message accepted by a provider that states how long it keeps trying (``gives_up_after_seconds``)
# is reported by then; the grace is for the report itself to reach us.
REPORT_GRACE_SECONDS = 3600
# Where the provider states no bound (or the backend is no provider): how long silence is waited out.
UNSTATED_REPORT_WAIT_SECONDS = 4 * 3600


class ErrorMeaning(StrEnum):
    """What a provider's delivery-report error code means, in the portal's own words."""

    OPTED_OUT = "opted_out"  # the recipient opted out at the provider or carrier: opt them out here too
    INVALID_RECIPIENT = "invalid_recipient"  # the number cannot receive messages
    TEMPORARY = "temporary"  # the handset or network was unavailable for a while
    REFUSED = "refused"  # the provider or carrier refused the message or the sender
    EXPIRED = "expired"  # not delivered in time


@dataclass(frozen=True)
class ProviderSetting:
    """A Django setting the provider reads, filled from the environment variable of the same name."""

    name: str
    default: str = ""
    kind: Literal["str", "secret", "url"] = "str"  # secret: may come from NAME_FILE; url: checked, no trailing /
    dev_default: str | None = None  # the default outside production, when it differs


@dataclass(frozen=True)
class ProviderInfo:
    """One provider: its name and label, capabilities, error meanings, settings and modules."""

    name: str  # stored on sender and relay numbers (at most 20 characters) and on provider events
    label: str  # what people read
    backend: str  # dotted path of its SMSBackend (a providers.backends.base.ProviderBackend)
    webhooks: str  # dotted path of its webhook module; its ``urlpatterns`` are served at /webhooks/<name>/
    nanp_only: bool = False  # sends only from and to North American (+1) numbers
    max_body_chars: int | None = None  # longest body it accepts; None: it states no limit
    mms: bool = True
    max_media: int | None = None  # media URLs per MMS; None: it states no limit
    max_mms_bytes: int | None = None  # text and media together
    multi_destination: bool = False  # one request can name several destinations (used up to SMS_GROUP_SIZE)
    # How long it keeps trying a message it accepted before failing it, with a report; None: unstated.
    gives_up_after_seconds: int | None = None
    # Delivery-report error code -> meaning. Codes not listed mean nothing in particular.
    error_meanings: Mapping[str, ErrorMeaning] = field(default_factory=dict, hash=False)
    settings: tuple[ProviderSetting, ...] = ()

    def can_send_to(self, number: str) -> bool:
        """Whether this provider can reach ``number`` (E.164)."""
        return not self.nanp_only or bool(_NANP.match(number))

    def error_meaning(self, code: str) -> ErrorMeaning | None:
        return self.error_meanings.get(code.strip()) if code else None


class UnknownProvider(LookupError):
    pass


M = ErrorMeaning
PROVIDERS: tuple[ProviderInfo, ...] = (
    # The first entry is the default provider of a new sender or relay number.
    ProviderInfo(
        name="plivo",
        label="Plivo",
        backend="providers.backends.plivo.SMSBackend",
        webhooks="providers.webhooks.plivo",
        max_body_chars=1600,
        max_media=10,
        max_mms_bytes=5 * 1024 * 1024,
        multi_destination=True,
        gives_up_after_seconds=3 * 3600,  # a message still queued after 3 hours fails with error 420
        # The ErrorCode of a failed or undelivered status callback.
        error_meanings={
            "10": M.REFUSED,  # invalid message
            "20": M.TEMPORARY,  # network error
            "30": M.REFUSED,  # spam detected
            "40": M.REFUSED,  # invalid source number
            "50": M.INVALID_RECIPIENT,  # invalid destination
            "60": M.REFUSED,  # loop detected
            "70": M.INVALID_RECIPIENT,  # destination permanently unavailable
            "80": M.TEMPORARY,  # destination temporarily unavailable
            "90": M.INVALID_RECIPIENT,  # no route
            "100": M.REFUSED,  # prohibited by carrier
            "110": M.REFUSED,  # message too long
            "120": M.REFUSED,  # MMS too large
            "200": M.OPTED_OUT,  # the recipient sent STOP; Plivo blocks further sends to them
            "201": M.REFUSED,  # US toll-free to Canada blocked
            "420": M.EXPIRED,  # expired in queue
        },
        settings=(
            ProviderSetting("PLIVO_API_URL", "https://api.plivo.com", kind="url"),
            ProviderSetting("PLIVO_AUTH_ID"),
            ProviderSetting("PLIVO_AUTH_TOKEN", kind="secret"),
            # V2 signatures cover only the URL: its callbacks also carry this secret in the URL path.
            ProviderSetting("PLIVO_WEBHOOK_SECRET", kind="secret", dev_default="dev-plivo-webhook-secret"),
        ),
    ),
    ProviderInfo(
        name="flowroute",
        label="Flowroute",
        backend="providers.backends.flowroute.SMSBackend",
        webhooks="providers.webhooks.flowroute",
        nanp_only=True,  # Messages API v2.1
        max_mms_bytes=750 * 1024,
        settings=(
            ProviderSetting("FLOWROUTE_API_URL", "https://api.flowroute.com", kind="url"),
            ProviderSetting("FLOWROUTE_ACCESS_KEY"),
            ProviderSetting("FLOWROUTE_SECRET_KEY", kind="secret"),
            # Flowroute signs nothing: its callbacks carry this secret in the URL path.
            ProviderSetting("FLOWROUTE_WEBHOOK_SECRET", kind="secret", dev_default="dev-flowroute-webhook-secret"),
        ),
    ),
)
del M
_BY_NAME = {p.name: p for p in PROVIDERS}


def get(name: str) -> ProviderInfo:
    """The entry named ``name``; :class:`UnknownProvider` if there is none."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise UnknownProvider(f"no SMS provider named {name!r}; known: {', '.join(_BY_NAME)}") from None


def entries() -> tuple[ProviderInfo, ...]:
    return PROVIDERS


def names() -> list[str]:
    return [p.name for p in PROVIDERS]


def choices() -> list[tuple[str, str]]:
    """``(name, label)`` pairs: model fields, forms and serializers take this callable as ``choices``."""
    return [(p.name, p.label) for p in PROVIDERS]


def default_name() -> str:
    """The provider of a new number unless one is given (a model field ``default``)."""
    return PROVIDERS[0].name


def max_body_chars() -> int:
    """The longest body every provider accepts: what the portal lets people write."""
    return min((p.max_body_chars for p in PROVIDERS if p.max_body_chars is not None), default=DEFAULT_MAX_BODY_CHARS)


def max_media() -> int:
    """The most media URLs every provider takes in one MMS."""
    return min((p.max_media for p in PROVIDERS if p.mms and p.max_media is not None), default=DEFAULT_MAX_MEDIA)


def unable_to_send_to(number: str) -> list[str]:
    """Names of the providers that cannot reach ``number`` (E.164)."""
    return [p.name for p in PROVIDERS if not p.can_send_to(number)]


def error_meaning(provider: str, code: str) -> ErrorMeaning | None:
    """What ``provider``'s error ``code`` means; None for an unlisted code or a backend that is no provider."""
    info = _BY_NAME.get(provider)
    return info.error_meaning(code) if info is not None and code else None


def silence_means_unsent_after(provider: str) -> float:
    """Seconds after which a message sent through ``provider`` whose answer was lost, and that heard no
    delivery report since, was most likely never accepted: the provider reports every message it
    accepts, at the latest when it gives up on it. Its stated bound plus :data:`REPORT_GRACE_SECONDS`,
    or :data:`UNSTATED_REPORT_WAIT_SECONDS` where it states none (or ``provider`` is no provider)."""
    info = _BY_NAME.get(provider)
    if info is None or info.gives_up_after_seconds is None:
        return float(UNSTATED_REPORT_WAIT_SECONDS)
    return float(info.gives_up_after_seconds + REPORT_GRACE_SECONDS)


def provider_settings() -> list[ProviderSetting]:
    """Every provider's own settings; settings.py reads each from the environment."""
    return [s for p in PROVIDERS for s in p.settings]
