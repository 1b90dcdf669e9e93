"""Campaign counters as append-only deltas, squashed by beat (no COUNT(*) on pages)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from django.db import connection, transaction
from django.db.models import Sum

from campaigns.models import CampaignCounter
from messaging.models import MessageStatus

# Statuses that a person sees as one number.
BUCKET: dict[str, str] = {
    MessageStatus.PENDING: "waiting",
    MessageStatus.CLAIMED: "waiting",
    MessageStatus.SENDING: "waiting",
    MessageStatus.UNKNOWN: "unknown",
    MessageStatus.QUEUED: "queued",
    MessageStatus.SENT: "sent",
    MessageStatus.DELIVERED: "delivered",
    MessageStatus.UNDELIVERED: "undelivered",
    MessageStatus.FAILED: "failed",
    MessageStatus.SKIPPED: "skipped",
    MessageStatus.CANCELLED: "cancelled",
    MessageStatus.EXPIRED: "expired",
}
BUCKETS = (
    "waiting",
    "unknown",
    "queued",
    "sent",
    "delivered",
    "undelivered",
    "failed",
    "skipped",
    "cancelled",
    "expired",
)
FINAL_BUCKETS = ("delivered", "undelivered", "failed", "skipped", "cancelled", "expired")


def record_transitions(moves: Iterable[tuple[int | None, str, str]]) -> None:
    """Record ``(campaign_id, old_status, new_status)`` moves as counter deltas."""
    deltas: Counter[tuple[int, str]] = Counter()
    for campaign_id, old, new in moves:
        if campaign_id is None:
            continue
        old_bucket, new_bucket = BUCKET[old], BUCKET[new]
        if old_bucket != new_bucket:
            deltas[(campaign_id, old_bucket)] -= 1
            deltas[(campaign_id, new_bucket)] += 1
    add_deltas(deltas)


def add_deltas(deltas: dict[tuple[int, str], int]) -> None:
    rows = [CampaignCounter(campaign_id=c, bucket=b, count=n) for (c, b), n in deltas.items() if n]
    if rows:
        CampaignCounter.objects.bulk_create(rows)


def campaign_counts(campaign_id: int) -> dict[str, int]:
    totals = dict.fromkeys(BUCKETS, 0)
    for row in CampaignCounter.objects.filter(campaign_id=campaign_id).values("bucket").annotate(n=Sum("count")):
        totals[row["bucket"]] = row["n"]
    return totals


def squash(campaign_id: int) -> None:
    """Replace a campaign's delta rows with one row per bucket."""
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [7001, campaign_id])
        rows = list(
            CampaignCounter.objects.select_for_update()
            .filter(campaign_id=campaign_id)
            .values_list("id", "bucket", "count")
        )
        if len(rows) <= len(BUCKETS):
            return
        totals: Counter[str] = Counter()
        for _, bucket, count in rows:
            totals[bucket] += count
        CampaignCounter.objects.filter(id__in=[r[0] for r in rows]).delete()
        CampaignCounter.objects.bulk_create(
            [CampaignCounter(campaign_id=campaign_id, bucket=b, count=n) for b, n in totals.items() if n]
        )
