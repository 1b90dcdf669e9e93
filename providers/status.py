"""The one normalized delivery-status set that every provider maps onto.

A provider's own vocabulary (Plivo's ``Status``, Flowroute's DLR ``status``)
is translated by its webhook module; nothing else sees provider words.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from providers.registry import ErrorMeaning, error_meaning


class DeliveryStatus(StrEnum):
    QUEUED = "queued"  # accepted by the provider, not yet handed to a carrier
    SENT = "sent"  # handed to the carrier
    DELIVERED = "delivered"  # the handset received it
    UNDELIVERED = "undelivered"  # the carrier could not deliver it
    FAILED = "failed"  # the provider refused or gave up


FINAL_STATUSES = frozenset({DeliveryStatus.DELIVERED, DeliveryStatus.UNDELIVERED, DeliveryStatus.FAILED})


def is_message_ref(ref: str) -> bool:
    """Whether ``ref`` can be one of our message ids (what every callback URL carries)."""
    return ref.isascii() and ref.isdigit() and len(ref) <= 18 and int(ref) > 0


@dataclass(frozen=True)
class StatusEvent:
    """A normalized delivery report. ``message_ref`` is our own id from the callback URL."""

    provider: str
    message_ref: str
    status: DeliveryStatus
    provider_message_id: str = ""
    error_code: str = ""
    error_text: str = ""
    occurred_at: datetime | None = None
    raw: dict[str, Any] = field(default_factory=dict)
    # What the provider charged for the whole message, in millionths of ``cost_currency``.
    cost_micros: int | None = None
    cost_currency: str = ""
    # Set by the drain: the stored ProviderEvent's id and arrival, so a receiver can ask to keep it for later.
    event_id: int | None = None
    received_at: datetime | None = None

    @property
    def meaning(self) -> ErrorMeaning | None:
        """What the provider's ``error_code`` means (see :mod:`providers.registry`)."""
        return error_meaning(self.provider, self.error_code) if self.error_code else None

    @property
    def recipient_opted_out(self) -> bool:
        """The provider refused the message because the recipient had opted out there (replied STOP)."""
        return self.meaning is ErrorMeaning.OPTED_OUT


MICROS = Decimal(1_000_000)
MAX_COST_MICROS = 10**12  # a million units of money for one message is not a price


def micros(amount: object) -> int | None:
    """A provider's decimal amount ("0.00650") as integer micro-units; None when it is not a price."""
    try:
        value = Decimal(str(amount).strip())
    except (InvalidOperation, ValueError):
        return None
    if not value.is_finite() or value < 0:
        return None
    result = int((value * MICROS).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    return result if result <= MAX_COST_MICROS else None


@dataclass(frozen=True)
class InboundSMS:
    """A normalized inbound message (SMS, or MMS when ``media_urls`` is set)."""

    provider: str
    sender: str  # E.164
    to: str  # E.164, our number
    text: str
    media_urls: tuple[str, ...] = ()
    provider_message_id: str = ""
    raw: dict[str, Any] = field(default_factory=dict)
