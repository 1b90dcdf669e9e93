"""Reads for campaigns: counters, progress, health."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.db.models import QuerySet

from accounts.models import User
from accounts.permissions import has_role, reads_everything
from campaigns.counters import FINAL_BUCKETS, campaign_sums, costs_from, counts_from
from campaigns.models import Campaign, CampaignEvent
from smsportal import health


def campaigns_visible_to(*, user: User | AnonymousUser) -> QuerySet[Campaign]:
    """The one visibility rule for campaigns (web pages, API, admin): admins and viewers see every
    campaign; a sender sees the campaigns they created. Anything else is a 404, never a 403, so an id
    reveals nothing."""
    qs = Campaign.objects.select_related("created_by")
    if reads_everything(user):
        return qs
    if not has_role(user, "viewer") or not isinstance(user, User):
        return qs.none()
    return qs.filter(created_by=user)


FINAL_CAMPAIGN_STATUSES = frozenset({Campaign.Status.COMPLETED, Campaign.Status.CANCELLED})


def campaign_stats(*, campaign: Campaign) -> dict:
    """Counts per status bucket, progress and cost, from counters (never COUNT(*) over messages)."""
    sums = campaign_sums(campaign.pk)
    counts = counts_from(sums)
    total = campaign.expected_total
    done = sum(counts[b] for b in FINAL_BUCKETS)
    return {
        "status": campaign.status,
        # Nothing more will change: a client polling the stats can stop.
        "final": campaign.status in FINAL_CAMPAIGN_STATUSES,
        "total": total,
        "counts": counts,
        "done": done,
        "progress": round(100 * done / total, 1)
        if total
        else (100.0 if campaign.status == Campaign.Status.COMPLETED else 0.0),
        "cost": campaign_cost(campaign=campaign, sums=sums),
        # Tracked links (campaigns/shortlinks.py): every visit, the links and the recipients clicked at least once.
        "clicks": {
            "total": sums.get("clicks", 0),
            "unique": sums.get("clickers", 0),
            "recipients": sums.get("click_people", 0),
        },
    }


def campaign_events(*, campaign: Campaign) -> QuerySet[CampaignEvent]:
    """A campaign's history (auto-pause, failover, expiry), newest first."""
    return CampaignEvent.objects.filter(campaign=campaign).order_by("-id")


def campaign_cost(*, campaign: Campaign, sums: dict[str, int] | None = None) -> dict:
    """Actual cost (what providers reported so far) beside the launch estimate and the budget, in micro-units."""
    costs, priced = costs_from(campaign_sums(campaign.pk) if sums is None else sums)
    currency = settings.SMS_COST_CURRENCY
    return {
        "currency": currency,
        "actual_micros": costs.pop(currency, 0),
        "priced_messages": priced,
        "estimated_micros": campaign.estimated_cost_micros,
        "max_spend_micros": campaign.max_spend_micros,
        "other_currencies": {c: n for c, n in costs.items() if n},
    }


def budget_exceeded_by_next(*, campaign: Campaign) -> str | None:
    """Why one more message would take the campaign over its budget, or None."""
    if campaign.max_spend_micros is None:
        return None
    cost = campaign_cost(campaign=campaign)
    spent, priced = cost["actual_micros"], cost["priced_messages"]
    # The next message costs about what the average one did (or the launch estimate's share).
    if priced:
        next_one = spent / priced
    elif campaign.estimated_cost_micros and campaign.expected_total:
        next_one = campaign.estimated_cost_micros / campaign.expected_total
    else:
        next_one = 0
    if spent + next_one <= campaign.max_spend_micros:
        return None
    return (
        f"Budget reached: {format_money(spent, cost['currency'])} spent of"
        f" {format_money(campaign.max_spend_micros, cost['currency'])}; the next message would exceed it."
    )


def format_money(value_micros: int | None, currency: str) -> str:
    """Micro-units shown to a person: 1234567 USD -> "1.2346 USD" (four places: SMS prices are fractions of a cent)."""
    if value_micros is None:
        return "-"
    return f"{value_micros / 1_000_000:,.4f} {currency}"


def health_status() -> dict:
    """Database, Redis, broker and beat, answered within two seconds (smsportal/health.py)."""
    return health.health_status()
