"""Reads for the staff web UI: progress bars, charts, failure reasons, message log.

Progress comes from counters (never COUNT(*) over messages). Chart queries are
bounded by a campaign id (index ``message_campaign_status``) and cached briefly,
so a page that polls does not re-aggregate on every request.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TypedDict

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.core.cache import cache
from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import Coalesce, TruncDate, TruncDay, TruncHour, TruncMinute
from django.db.models.functions.datetime import TruncBase
from django.utils import timezone

from accounts.models import User
from accounts.permissions import reads_everything
from campaigns.counters import BUCKET
from campaigns.demo import DEMO_CAMPAIGN, DEMO_LIST
from campaigns.models import Campaign, CampaignCounter
from campaigns.selectors import campaign_stats, campaigns_visible_to
from campaigns.shortlinks import CLICKERS, CLICKS
from messaging.models import Message, MessageStatus
from messaging.outcomes import CHARTED, FAILED_STATUSES, OUTCOME_BY_KEY, OUTCOME_OF_STATUS, OUTCOMES
from providers import registry as provider_registry
from recipients.models import RecipientList
from recipients.selectors import recipient_lists_visible_to

CHART_CACHE_SECONDS = 10
# The progress bar's coloured parts, in drawing order; "waiting" is the unfilled rest.
BAR_OUTCOMES = ("delivered", "sent", "failed", "not_sent")


@dataclass
class Progress:
    total: int
    counts: dict[str, int]
    outcomes: list[dict]  # every outcome with its count and its statuses' counts, in OUTCOMES order
    processed: int
    percent: float
    # Launched, not every row exists, and no rows yet or no audience count to show progress against.
    preparing: bool = False
    cost: dict | None = None  # campaigns.selectors.campaign_cost, from the same counter read
    clicks: dict | None = None  # {"total", "unique", "recipients"} for tracked links

    @property
    def parts(self) -> list[dict]:
        """The coloured parts of the bar."""
        return [o for o in self.outcomes if o["css"] in BAR_OUTCOMES]

    @property
    def waiting(self) -> int:
        return self.counts.get("waiting", 0)

    @property
    def failed(self) -> int:
        return sum(o["count"] for o in self.outcomes if o["css"] == "failed")


def _outcomes(counts: dict[str, int], total: int) -> list[dict]:
    """Counter buckets folded into outcomes; each bucket belongs to exactly one outcome."""
    rows = []
    for outcome in OUTCOMES:
        buckets = list(dict.fromkeys(BUCKET[s] for s in outcome.statuses))
        statuses = [
            {"bucket": b, "label": MessageStatus(b).label, "count": counts.get(b, 0)}
            for b in buckets
            if b in MessageStatus.values
        ]
        n = sum(counts.get(b, 0) for b in buckets)
        rows.append(
            {
                "css": outcome.key,
                "label": outcome.label,
                "help": outcome.help,
                "count": n,
                "statuses": statuses if len(statuses) > 1 else [],
                "percent": round(100 * n / total, 2) if total else 0,
            }
        )
    return rows


def campaign_progress(*, campaign: Campaign) -> Progress:
    """One progress bar: every message that has left the queue counts as processed."""
    stats = campaign_stats(campaign=campaign)
    counts, total = stats["counts"], stats["total"]
    processed = max(0, campaign.recipient_total - counts.get("waiting", 0))  # rows made that left the queue
    if total:
        percent = round(100 * processed / total, 1)
    else:
        percent = 100.0 if campaign.status == Campaign.Status.COMPLETED else 0.0
    # No rows yet, or no audience count to measure against: "preparing", with the rows made so far.
    preparing = (
        not campaign.materialized
        and not (campaign.audience_total and campaign.recipient_total)
        and campaign.status in {Campaign.Status.SENDING, Campaign.Status.PAUSED}
    )
    if preparing:
        total = campaign.recipient_total
    return Progress(
        total=total,
        counts=counts,
        outcomes=_outcomes(counts, total),
        processed=processed,
        percent=percent,
        preparing=preparing,
        cost=stats["cost"],
        clicks=stats["clicks"],
    )


def campaign_list_for_dashboard(
    *, user: User | AnonymousUser, limit: int = 10
) -> tuple[list[Campaign], list[Campaign]]:
    """Running campaigns (sending, paused, scheduled) and the most recent others, of those ``user`` sees."""
    base = campaigns_visible_to(user=user)
    running = list(base.filter(status__in=[Campaign.Status.SENDING, Campaign.Status.PAUSED, Campaign.Status.SCHEDULED]))
    recent = list(
        base.exclude(status__in=[Campaign.Status.SENDING, Campaign.Status.PAUSED, Campaign.Status.SCHEDULED])[:limit]
    )
    return running, recent


def _charted(
    messages: QuerySet[Message], *, trunc: type[TruncBase], since: datetime | None = None, until: datetime | None = None
) -> dict:
    """``{time bucket: {outcome: n}}`` for messages that were sent or failed.

    Each message counts once, in its current outcome, at one time: when it was sent, else when it failed.
    """
    statuses = [s for key in CHARTED for s in OUTCOME_BY_KEY[key].statuses]
    rows = messages.filter(status__in=statuses).annotate(at=Coalesce("sent_at", "finished_at"))
    rows = rows.filter(at__isnull=False)
    if since is not None:
        rows = rows.filter(at__gte=since)
    if until is not None:
        rows = rows.filter(at__lt=until)
    out: dict = {}
    for row in rows.annotate(bucket=trunc("at")).values("bucket", "status").annotate(n=Count("id")):
        per = out.setdefault(row["bucket"], dict.fromkeys(CHARTED, 0))
        per[OUTCOME_OF_STATUS[row["status"]].key] += row["n"]
    return out


def _per_day(*, campaigns: QuerySet[Campaign], since: datetime, until: datetime | None) -> dict[date, dict[str, int]]:
    # Only campaigns that could have sent in the window are scanned, so the WHERE
    # uses the (campaign, status) index instead of reading the whole table.
    campaign_ids = list(
        campaigns.filter(launched_at__isnull=False)
        .filter(Q(completed_at__isnull=True) | Q(completed_at__gte=since))
        .filter(Q(cancelled_at__isnull=True) | Q(cancelled_at__gte=since))
        .values_list("pk", flat=True)
    )
    if not campaign_ids:
        return {}
    return _charted(Message.objects.filter(campaign_id__in=campaign_ids), trunc=TruncDate, since=since, until=until)


def messages_per_day(*, user: User | AnonymousUser, days: int = 14, today: date | None = None) -> list[dict]:
    """Messages per day and outcome (delivered, sent, failed) for the last ``days`` days, of the
    campaigns ``user`` sees (the campaign visibility rule).

    Past days cannot change much, so they are cached for ten minutes (per person when they see
    only some campaigns); today is counted on each call (the dashboard does not poll this).
    """
    campaigns = campaigns_visible_to(user=user)
    scope = "all" if reads_everything(user) else f"user{getattr(user, 'pk', 0)}"
    today = today or timezone.localdate()
    start = today - timedelta(days=days - 1)
    since = timezone.make_aware(datetime.combine(start, datetime.min.time()))
    today_start = timezone.make_aware(datetime.combine(today, datetime.min.time()))
    key = f"ui:messages_per_day:v3:{scope}:{days}:{today.isoformat()}"
    past = cache.get(key)
    if past is None:
        past = _per_day(campaigns=campaigns, since=since, until=today_start)
        cache.set(key, past, 600)
    per_day = {**past, **_per_day(campaigns=campaigns, since=today_start, until=None)}
    empty = dict.fromkeys(CHARTED, 0)
    return [{"day": day, **per_day.get(day, empty)} for day in (start + timedelta(days=i) for i in range(days))]


def _time_step(span: timedelta) -> tuple[type[TruncBase], timedelta]:
    """Chart buckets that grow with the time shown: minutes up to 2 h, hours up to 3 days, then days."""
    if span <= timedelta(hours=2):
        return TruncMinute, timedelta(minutes=1)
    if span <= timedelta(days=3):
        return TruncHour, timedelta(hours=1)
    return TruncDay, timedelta(days=1)


def campaign_timeline(*, campaign: Campaign) -> list[dict]:
    """Messages per outcome and time bucket since launch; the bucket grows with the campaign's age.

    Each message is counted once, in its current outcome, at the time it was sent (or failed unsent).
    """
    if not campaign.launched_at:
        return []
    end = campaign.completed_at or campaign.cancelled_at or timezone.now()
    trunc, step = _time_step(end - campaign.launched_at)
    key = f"ui:timeline:v2:{campaign.pk}:{campaign.status}:{step.total_seconds():.0f}"
    cached: list[dict] | None = cache.get(key)
    if cached is not None:
        return cached
    buckets = _charted(Message.objects.filter(campaign=campaign), trunc=trunc)
    series = [{"t": t, **buckets[t]} for t in sorted(buckets)][-60:]
    cache.set(key, series, CHART_CACHE_SECONDS)
    return series


def campaign_click_timeline(*, campaign: Campaign) -> list[dict]:
    """Clicks on the campaign's tracked links per time bucket, from launch until now (links outlive the sending).

    Rows ``{"t", "first", "repeat"}``: links clicked for the first time, and every other click. Read
    from the click counter rows (one per minute once squashed, index ``counter_campaign_bucket``),
    never from the links or the messages; cached briefly like the outcome chart.
    """
    if not campaign.track_links or not campaign.launched_at:
        return []
    trunc, step = _time_step(timezone.now() - campaign.launched_at)
    key = f"ui:clicks:v1:{campaign.pk}:{step.total_seconds():.0f}"
    cached: list[dict] | None = cache.get(key)
    if cached is not None:
        return cached
    rows = (
        CampaignCounter.objects.filter(campaign=campaign, bucket__in=[CLICKS, CLICKERS], minute__isnull=False)
        .annotate(t=trunc("minute"))
        .values("t", "bucket")
        .annotate(n=Sum("count"))
    )
    per: dict[datetime, dict[str, int]] = {}
    for row in rows:
        per.setdefault(row["t"], {CLICKS: 0, CLICKERS: 0})[row["bucket"]] += row["n"]
    series = [{"t": t, "first": n[CLICKERS], "repeat": n[CLICKS] - n[CLICKERS]} for t, n in sorted(per.items())][-60:]
    cache.set(key, series, CHART_CACHE_SECONDS)
    return series


class FailureReason(TypedDict):
    status: str
    label: str
    error_code: str
    error_text: str
    n: int


def campaign_failure_reasons(*, campaign: Campaign, limit: int = 20) -> list[FailureReason]:
    """Failed messages grouped by error, most frequent first."""
    rows = (
        Message.objects.filter(campaign=campaign, status__in=FAILED_STATUSES)
        .values("status", "error_code", "error_text")
        .annotate(n=Count("id"))
        .order_by("-n", "error_code")[:limit]
    )
    return [
        FailureReason(
            status=r["status"],
            label=MessageStatus(r["status"]).label,
            error_code=r["error_code"],
            error_text=r["error_text"],
            n=r["n"],
        )
        for r in rows
    ]


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


@dataclass
class FirstRunProvider:
    """How to connect one provider, read from the provider registry (no provider is named here)."""

    label: str
    settings: list[str]  # environment variables to set (its API address has a default)
    inbound_path: str  # where its inbound-message callback must point


@dataclass
class FirstRun:
    demo_list: RecipientList | None
    demo_campaign: Campaign | None
    backend: str
    sandbox: bool
    providers: list[FirstRunProvider]


def _how_to_connect(provider: provider_registry.ProviderInfo) -> FirstRunProvider:
    secret = next((s.name for s in provider.settings if s.name.endswith("_WEBHOOK_SECRET")), "secret")
    return FirstRunProvider(
        label=provider.label,
        settings=[s.name for s in provider.settings if s.kind != "url"],
        inbound_path=f"/webhooks/{provider.name}/<{secret}>/inbound/",
    )


def first_run_panel(*, user: User) -> FirstRun | None:
    """What the dashboard's first-run panel explains, or None once they closed it or there is no demo."""
    if user.first_run_dismissed_at is not None:
        return None
    demo_list = RecipientList.objects.filter(name=DEMO_LIST).first()
    demo_campaign = Campaign.objects.filter(name=DEMO_CAMPAIGN).first()
    backend = settings.SMS_BACKEND
    sandbox = backend.endswith(".sandbox.SMSBackend")
    if demo_list is None and demo_campaign is None and not sandbox:
        return None  # a real installation, not the demo
    providers = [_how_to_connect(p) for p in provider_registry.PROVIDERS]
    return FirstRun(
        demo_list=demo_list, demo_campaign=demo_campaign, backend=backend, sandbox=sandbox, providers=providers
    )


def lists_for_compose(*, user: User | AnonymousUser) -> QuerySet[RecipientList]:
    """The lists ``user`` may target: the ones they see, not archived."""
    return recipient_lists_visible_to(user=user).filter(is_archived=False).order_by("name")
