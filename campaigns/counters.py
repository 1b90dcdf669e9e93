"""Campaign counters as append-only deltas, squashed by beat (no COUNT(*) on pages)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import datetime

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


# Cost rolls up into the same delta rows: "cost:USD" holds micro-units, "priced" the messages with a price.
COST_PREFIX = "cost:"
PRICED = "priced"


def record_costs(costs: Iterable[tuple[int, str, int, int]]) -> None:
    """``(campaign_id, currency, added_micros, newly_priced)`` as counter deltas."""
    deltas: Counter[tuple[int, str]] = Counter()
    for campaign_id, currency, added, newly_priced in costs:
        deltas[(campaign_id, COST_PREFIX + currency[:3])] += added
        deltas[(campaign_id, PRICED)] += newly_priced
    add_deltas(deltas)


def _sums(campaign_id: int) -> dict[str, int]:
    rows = CampaignCounter.objects.filter(campaign_id=campaign_id).values("bucket").annotate(n=Sum("count"))
    return {row["bucket"]: row["n"] for row in rows}


def campaign_counts(campaign_id: int) -> dict[str, int]:
    return counts_from(_sums(campaign_id))


def counts_from(sums: dict[str, int]) -> dict[str, int]:
    return {bucket: sums.get(bucket, 0) for bucket in BUCKETS}


def costs_from(sums: dict[str, int]) -> tuple[dict[str, int], int]:
    """``({currency: micros}, priced messages)`` from a campaign's bucket sums."""
    costs = {b.removeprefix(COST_PREFIX): n for b, n in sums.items() if b.startswith(COST_PREFIX)}
    return costs, sums.get(PRICED, 0)


def campaign_costs(campaign_id: int) -> tuple[dict[str, int], int]:
    return costs_from(_sums(campaign_id))


def campaign_sums(campaign_id: int) -> dict[str, int]:
    """Every bucket's total in one query (status counts and costs)."""
    return _sums(campaign_id)


def squash(campaign_id: int) -> None:
    """Replace a campaign's delta rows with one row per bucket (and click minute)."""
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [7001, campaign_id])
        rows = list(
            CampaignCounter.objects.select_for_update()
            .filter(campaign_id=campaign_id)
            .values_list("id", "bucket", "minute", "count")
        )
        totals: Counter[tuple[str, datetime | None]] = Counter()
        for _, bucket, minute, count in rows:
            totals[(bucket, minute)] += count
        if len(rows) == len(totals):  # one row per bucket and minute already
            return
        CampaignCounter.objects.filter(id__in=[r[0] for r in rows]).delete()
        CampaignCounter.objects.bulk_create(
            [CampaignCounter(campaign_id=campaign_id, bucket=b, minute=m, count=n) for (b, m), n in totals.items() if n]
        )


def campaigns_to_squash() -> list[int]:
    """Campaigns with more delta rows than buckets and click minutes: squash would shrink them."""
    table = CampaignCounter._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT campaign_id FROM {table} GROUP BY campaign_id"
            " HAVING count(*) > count(DISTINCT (bucket, coalesce(minute, 'epoch')))"
        )
        return [row[0] for row in cursor.fetchall()]
