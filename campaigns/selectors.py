"""Reads for campaigns: counters, progress, health."""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser
from django.db import connection
from django.db.models import QuerySet

from accounts.models import User
from accounts.permissions import has_role, reads_everything
from campaigns.counters import FINAL_BUCKETS, campaign_counts
from campaigns.models import Campaign
from smsportal.celery import app


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
