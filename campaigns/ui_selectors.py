"""Reads for the staff web UI: progress bars, charts, failure reasons, message log.

Progress comes from counters (never COUNT(*) over messages). Chart queries are
bounded by a campaign id (index ``message_campaign_status``) and cached briefly,
so a page that polls does not re-aggregate on every request.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TypedDict

from django.core.cache import cache
from django.db.models import Count, Q, QuerySet
from django.db.models.functions import TruncDate, TruncDay, TruncHour, TruncMinute
from django.db.models.functions.datetime import TruncBase
from django.utils import timezone

from campaigns.models import Campaign
from campaigns.selectors import campaign_stats
from messaging.models import Message, MessageStatus
from recipients.models import RecipientList

S = MessageStatus
FAILED_STATUSES = (S.FAILED, S.UNDELIVERED, S.EXPIRED)
CHART_CACHE_SECONDS = 30

# How counter buckets are shown as one progress bar: (css class, label, buckets).
PROGRESS_PARTS = (
    ("delivered", "Delivered", ("delivered",)),
    ("sent", "Sent", ("queued", "sent", "unknown")),
    ("failed", "Failed", ("failed", "undelivered", "expired")),
    ("skipped", "Skipped or cancelled", ("skipped", "cancelled")),
)


@dataclass
class Progress:
    total: int
    counts: dict[str, int]
    parts: list[dict]
    processed: int
    percent: float
    cost: dict | None = None  # campaigns.selectors.campaign_cost, from the same counter read
    clicks: dict | None = None  # {"total", "unique"} for tracked links

    @property
    def waiting(self) -> int:
        return self.counts.get("waiting", 0)


def campaign_progress(*, campaign: Campaign) -> Progress:
    """One progress bar: every message that has left the queue counts as processed."""
    stats = campaign_stats(campaign=campaign)
    counts, total = stats["counts"], stats["total"]
    parts = []
    for css, label, buckets in PROGRESS_PARTS:
        n = sum(counts.get(b, 0) for b in buckets)
        parts.append({"css": css, "label": label, "count": n, "percent": round(100 * n / total, 2) if total else 0})
    processed = max(0, total - counts.get("waiting", 0))
    if total:
        percent = round(100 * processed / total, 1)
    else:
        percent = 100.0 if campaign.status == Campaign.Status.COMPLETED else 0.0
    return Progress(
        total=total,
        counts=counts,
        parts=parts,
        processed=processed,
        percent=percent,
        cost=stats["cost"],
        clicks=stats["clicks"],
    )


def campaign_list_for_dashboard(*, limit: int = 10) -> tuple[list[Campaign], list[Campaign]]:
    """Running campaigns (sending, paused, scheduled) and the most recent others."""
    base = Campaign.objects.select_related("created_by")
    running = list(base.filter(status__in=[Campaign.Status.SENDING, Campaign.Status.PAUSED, Campaign.Status.SCHEDULED]))
    recent = list(
        base.exclude(status__in=[Campaign.Status.SENDING, Campaign.Status.PAUSED, Campaign.Status.SCHEDULED])[:limit]
    )
    return running, recent


def _per_day(*, since: datetime, until: datetime | None) -> tuple[dict[date, int], dict[date, int]]:
    # Only campaigns that could have sent in the window are scanned, so the WHERE
    # uses the (campaign, status) index instead of reading the whole table.
    campaign_ids = list(
        Campaign.objects.filter(launched_at__isnull=False)
        .filter(Q(completed_at__isnull=True) | Q(completed_at__gte=since))
        .filter(Q(cancelled_at__isnull=True) | Q(cancelled_at__gte=since))
        .values_list("pk", flat=True)
    )
    if not campaign_ids:
        return {}, {}
    messages = Message.objects.filter(campaign_id__in=campaign_ids)
    sent_rows = messages.filter(sent_at__gte=since)
    failed_rows = messages.filter(status__in=FAILED_STATUSES, finished_at__gte=since)
    if until is not None:
        sent_rows, failed_rows = sent_rows.filter(sent_at__lt=until), failed_rows.filter(finished_at__lt=until)
    sent = {
        r["day"]: r["n"] for r in sent_rows.annotate(day=TruncDate("sent_at")).values("day").annotate(n=Count("id"))
    }
    failed = {
        r["day"]: r["n"]
        for r in failed_rows.annotate(day=TruncDate("finished_at")).values("day").annotate(n=Count("id"))
    }
    return sent, failed


def messages_per_day(*, days: int = 14, today: date | None = None) -> list[dict]:
    """Campaign messages accepted and failed per day for the last ``days`` days.

    Past days cannot change much, so they are cached for ten minutes; today is
    counted on each call (the dashboard does not poll this).
    """
    today = today or timezone.localdate()
    start = today - timedelta(days=days - 1)
    since = timezone.make_aware(datetime.combine(start, datetime.min.time()))
    today_start = timezone.make_aware(datetime.combine(today, datetime.min.time()))
    key = f"ui:messages_per_day:{days}:{today.isoformat()}"
    past = cache.get(key)
    if past is None:
        past = _per_day(since=since, until=today_start)
        cache.set(key, past, 600)
    now_sent, now_failed = _per_day(since=today_start, until=None)
    sent, failed = {**past[0], **now_sent}, {**past[1], **now_failed}
    series = []
    for i in range(days):
        day = start + timedelta(days=i)
        series.append({"day": day, "sent": sent.get(day, 0), "failed": failed.get(day, 0)})
    return series


def campaign_timeline(*, campaign: Campaign) -> list[dict]:
    """Messages accepted and failed per time bucket since launch; the bucket grows with the campaign's age."""
    if not campaign.launched_at:
        return []
    end = campaign.completed_at or campaign.cancelled_at or timezone.now()
    span = end - campaign.launched_at
    trunc: type[TruncBase]
    if span <= timedelta(hours=2):
        trunc, step = TruncMinute, timedelta(minutes=1)
    elif span <= timedelta(days=3):
        trunc, step = TruncHour, timedelta(hours=1)
    else:
        trunc, step = TruncDay, timedelta(days=1)
    key = f"ui:timeline:{campaign.pk}:{campaign.status}:{step.total_seconds():.0f}"
    cached: list[dict] | None = cache.get(key)
    if cached is not None:
        return cached
    messages = Message.objects.filter(campaign=campaign)
    buckets: dict[datetime, dict] = {}
    for row in messages.filter(sent_at__isnull=False).annotate(t=trunc("sent_at")).values("t").annotate(n=Count("id")):
        buckets.setdefault(row["t"], {"t": row["t"], "sent": 0, "failed": 0})["sent"] = row["n"]
    for row in (
        messages.filter(status__in=FAILED_STATUSES, finished_at__isnull=False)
        .annotate(t=trunc("finished_at"))
        .values("t")
        .annotate(n=Count("id"))
    ):
        buckets.setdefault(row["t"], {"t": row["t"], "sent": 0, "failed": 0})["failed"] = row["n"]
    series = [buckets[t] for t in sorted(buckets)][-60:]
    cache.set(key, series, CHART_CACHE_SECONDS)
    return series


class FailureReason(TypedDict):
    status: str
    error_code: str
    error_text: str
    n: int


def campaign_failure_reasons(*, campaign: Campaign, limit: int = 20) -> list[FailureReason]:
    """Failed messages grouped by error, most frequent first."""
    return list(
        Message.objects.filter(campaign=campaign, status__in=FAILED_STATUSES)
        .values("status", "error_code", "error_text")
        .annotate(n=Count("id"))
        .order_by("-n", "error_code")[:limit]
    )


def campaign_message_page(
    *, campaign: Campaign, status: str = "", number: str = "", after: int = 0, size: int = 50
) -> tuple[list[Message], int | None]:
    """One page of the message log (keyset on id, no COUNT). Returns the rows and the id to continue after."""
    qs: QuerySet[Message] = Message.objects.filter(campaign=campaign).order_by("id")
    if status:
        qs = qs.filter(status=status)
    digits = "".join(ch for ch in number if ch.isdigit())
    if digits:
        qs = qs.filter(to__contains=digits)
    if after:
        qs = qs.filter(id__gt=after)
    rows = list(
        qs.only("id", "to", "sender", "status", "segments", "error_code", "error_text", "sent_at", "attempts")[
            : size + 1
        ]
    )
    next_after = rows[size - 1].id if len(rows) > size else None
    return rows[:size], next_after


def lists_for_compose() -> QuerySet[RecipientList]:
    return RecipientList.objects.filter(is_archived=False).order_by("name")
