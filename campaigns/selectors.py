"""Reads for campaigns: counters, progress, health."""

from __future__ import annotations

from django.db import connection
from django.db.models import QuerySet

from campaigns.counters import FINAL_BUCKETS, campaign_counts
from campaigns.models import Campaign, CampaignEvent
from smsportal.celery import app

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
    checks: dict[str, str] = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:  # any failure means unhealthy
        checks["database"] = f"error: {type(exc).__name__}"
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        checks["broker"] = "ok"
    except Exception as exc:
        checks["broker"] = f"error: {type(exc).__name__}"
    return {"ok": all(v == "ok" for v in checks.values()), "checks": checks}
