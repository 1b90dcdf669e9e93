"""What the send path asks of the apps above it. They register answers in their AppConfig.ready().

``messaging`` sits below ``recipients`` and ``campaigns``: they import it, never the
reverse. Yet sending needs answers only they have:

- **consent** (recipients): may a person with this consent status get this kind of message?
- **campaigns**: which campaign rows may be claimed now, what each says and from which
  number, which campaigns stopped mid-batch, and what follows from outcomes (counters,
  auto-pause, failover events, the next batches).

Like Django's signals, this keeps the dependency one way without function-level imports.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Protocol, TypedDict

from django.core.exceptions import ImproperlyConfigured
from django.db.models import Q

if TYPE_CHECKING:
    from messaging.engine import Row


class ConsentRule(Protocol):
    def __call__(self, *, kind: str, consent: str | None) -> bool: ...


@dataclass
class Prepared:
    """The campaign's verdict on claimed rows: the rest are ready (body, sender and provider set)."""

    skipped: list[int] = field(default_factory=list)
    released: list[int] = field(default_factory=list)  # back to pending: their campaign just paused
    expired: list[int] = field(default_factory=list)
    deferred: dict[int, datetime] = field(default_factory=dict)  # id -> when the send window opens
    number_rates: dict[str, float] = field(default_factory=dict)  # messages/s per number of the pools
    valid_until: dict[int, datetime] = field(default_factory=dict)  # campaign -> nothing may be sent from then


@dataclass(frozen=True)
class CampaignOutcomes:
    campaign_id: int
    accepted: int
    failed: int  # failed for good or waiting for a retry
    pause_reason: str = ""  # set when every send would fail alike (the provider refused our credentials)
    unusable_provider: str = ""  # the provider that refused our credentials (with pause_reason)
    # provider -> (accepted, failed): auto-pause counts only the providers the campaign can still use
    by_provider: dict[str, tuple[int, int]] = field(default_factory=dict)


class CampaignSending(Protocol):
    def claimable(self) -> Q:
        """Messages a worker may claim now: one-offs, and rows of campaigns that are sending."""
        ...

    def prepare(self, rows: Sequence[Row], *, now: datetime) -> Prepared:
        """Render bodies and choose senders for campaign rows, in place; say which wait or drop,
        and the rate of each number in the campaigns' pools."""
        ...

    def revoked(self, rows: Sequence[Row]) -> set[int]:
        """Ids of campaign rows whose number may no longer send for their campaign (its grant was
        revoked, or its holder deactivated, since the claim): released, the next claim picks again."""
        ...

    def halted(self, campaign_ids: Iterable[int]) -> set[int]:
        """Those of the campaigns that stopped sending (paused, cancelled) since the claim."""
        ...

    def record_expiry(self, campaign_ids: Iterable[int]) -> None:
        """Rows of these campaigns expired unsent (validity period over): say so in their history."""
        ...

    def record_transitions(self, moves: Iterable[tuple[int | None, str, str]]) -> None:
        """``(campaign_id, old_status, new_status)`` in the same transaction as the move (counters)."""
        ...

    def record_costs(self, costs: Sequence[tuple[int, str, int, int]]) -> None:
        """``(campaign_id, currency, added_micros, newly_priced_messages)`` in the message's transaction:
        roll up the campaign's cost and stop a campaign about to go over its budget."""
        ...

    def after_outcomes(self, outcomes: Sequence[CampaignOutcomes]) -> None:
        """Sends were recorded: auto-pause a campaign that fails too much or cannot use its provider."""
        ...

    def provider_health_changed(self, *, provider: str, healthy: bool, campaign_ids: Iterable[int]) -> None:
        """Failover moved traffic away from (or back to) a provider: tell the campaigns' history."""
        ...

    def after_batch(self, campaign_ids: Iterable[int]) -> None:
        """A batch finished: queue the campaigns' next batches."""
        ...


class _Registered(TypedDict, total=False):
    consent_rule: ConsentRule
    campaigns: CampaignSending


_registered: _Registered = {}


def register(*, consent_rule: ConsentRule | None = None, campaigns: CampaignSending | None = None) -> None:
    if consent_rule is not None:
        _registered["consent_rule"] = consent_rule
    if campaigns is not None:
        _registered["campaigns"] = campaigns


def consent_allows(*, kind: str, consent: str | None) -> bool:
    rule = _registered.get("consent_rule")
    if rule is None:
        raise ImproperlyConfigured("No consent rule is registered: is the recipients app installed?")
    return rule(kind=kind, consent=consent)


def campaigns() -> CampaignSending:
    registered = _registered.get("campaigns")
    if registered is None:
        raise ImproperlyConfigured("No campaign sending hooks are registered: is the campaigns app installed?")
    return registered
