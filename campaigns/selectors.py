"""Reads for campaigns: counters, progress, health."""

from __future__ import annotations

from campaigns.counters import FINAL_BUCKETS, campaign_counts
from campaigns.models import Campaign
from smsportal import health


def campaign_stats(*, campaign: Campaign) -> dict:
    """Counts per status bucket and progress, from counters (never COUNT(*) over messages)."""
    counts = campaign_counts(campaign.pk)
    total = campaign.recipient_total
    done = sum(counts[b] for b in FINAL_BUCKETS)
    return {
        "total": total,
        "counts": counts,
        "done": done,
        "progress": round(100 * done / total, 1)
        if total
        else (100.0 if campaign.status == Campaign.Status.COMPLETED else 0.0),
    }


def health_status() -> dict:
    """Database, Redis, broker and beat, answered within two seconds (smsportal/health.py)."""
    return health.health_status()
