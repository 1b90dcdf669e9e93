"""Reads for campaigns: counters, progress, health."""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser
from django.db.models import QuerySet

from accounts.models import User
from accounts.permissions import has_role, reads_everything
from campaigns.counters import FINAL_BUCKETS, campaign_counts
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
    """Counts per status bucket and progress, from counters (never COUNT(*) over messages)."""
    counts = campaign_counts(campaign.pk)
    total = campaign.recipient_total
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
    }


def campaign_events(*, campaign: Campaign) -> QuerySet[CampaignEvent]:
    """A campaign's history (auto-pause, failover, expiry), newest first."""
    return CampaignEvent.objects.filter(campaign=campaign).order_by("-id")


def health_status() -> dict:
    """Database, Redis, broker and beat, answered within two seconds (smsportal/health.py)."""
    return health.health_status()
