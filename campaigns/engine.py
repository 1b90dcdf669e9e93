"""The send path: claim rows, send them concurrently, record outcomes in bulk.

A batch goes through four short transactions and never holds one open during
HTTP calls:

1. claim: ``pending`` rows of the batch (``FOR UPDATE SKIP LOCKED``) become
   ``claimed`` with a lease. A redelivered task finds nothing left to claim.
2. prepare: bodies are rendered, consent, validity and quiet hours checked,
   a sender picked (sticky within a pool, away from a failing provider).
3. per chunk: rows become ``sending`` just before their requests start, so a
   worker that dies leaves ``claimed`` rows (safe to send again) apart from
   ``sending`` ones (outcome unknown: settled by the provider's callback).
4. outcomes are recorded in bulk; transient errors come back as ``pending``
   with a backoff ``due_at``, permanent ones fail at once.
"""

from __future__ import annotations

import hashlib
import logging
import random
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from functools import lru_cache

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from campaigns import failover
from campaigns.bulk import bulk_set
from campaigns.compose import compose_body
from campaigns.encoding import analyze
from campaigns.models import Campaign, Message, MessageStatus
from campaigns.ratelimit import get_limiter
from campaigns.scheduling import next_allowed
from campaigns.templating import render
from campaigns.transitions import move
from providers.backends import OutboundSMS, SendOutcome, get_backend
from providers.errors import AuthenticationFailed, ConfigurationError, ProviderError, RecipientOptedOut
from recipients.models import ConsentStatus, Recipient, template_context
from recipients.optouts import RecentOptOuts

logger = logging.getLogger(__name__)
S = MessageStatus


@dataclass
class Row:
    id: int
    campaign_id: int | None
    recipient_id: int | None
    to: str
    kind: str
    attempts: int
    body: str
    media_urls: list[str]
    sender: str
    provider: str
    consent: str | None
    context: dict = field(default_factory=dict)
    segments: int = 0


@dataclass
class BatchResult:
    claimed: int = 0
    accepted: int = 0
    failed: int = 0
    retrying: int = 0
    skipped: int = 0
    released: int = 0
    deferred: int = 0
    campaigns: set[int] = field(default_factory=set)


def send_batch(*, message_ids: Sequence[int]) -> BatchResult:
    """Send the still-pending messages among ``message_ids``. Idempotent."""
    result = BatchResult()
    rows = _claim(message_ids)
    result.claimed = len(rows)
    if not rows:
        return result
    result.campaigns = {r.campaign_id for r in rows if r.campaign_id}
    campaigns = {c.pk: c for c in Campaign.objects.filter(pk__in=result.campaigns).prefetch_related("senders")}
    ready = _prepare(rows, campaigns, result)
    chunks = list(_chunks(ready, campaigns))
    for i, chunk in enumerate(chunks):
        if not _send_chunk(chunk, campaigns, result):
            _release([r.id for later in chunks[i + 1 :] for r in later], result)
            break
    return result


def _claim(message_ids: Sequence[int]) -> list[Row]:
    now = timezone.now()
    with transaction.atomic():
        found = list(
            Message.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(pk__in=list(message_ids), status=S.PENDING, due_at__lte=now)
            .filter(Q(campaign__isnull=True) | Q(campaign__status=Campaign.Status.SENDING))
            .values(
                "pk",
                "campaign_id",
                "recipient_id",
                "to",
                "kind",
                "attempts",
                "body",
                "media_urls",
                "sender",
                "provider",
                "recipient__consent_status",
                "recipient__first_name",
                "recipient__last_name",
                "recipient__attributes",
            )
        )
        if not found:
            return []
        Message.objects.filter(pk__in=[r["pk"] for r in found]).update(
            status=S.CLAIMED, lease_expires_at=now + timedelta(seconds=settings.SMS_LEASE_SECONDS)
        )
    rows = []
    for r in found:
        context = template_context(
            attributes=r["recipient__attributes"],
            first_name=r["recipient__first_name"],
            last_name=r["recipient__last_name"],
            phone=r["to"],
        )
        rows.append(
            Row(
                id=r["pk"],
                campaign_id=r["campaign_id"],
                recipient_id=r["recipient_id"],
                to=r["to"],
                kind=r["kind"],
                attempts=r["attempts"],
                body=r["body"],
                media_urls=r["media_urls"] or [],
                sender=r["sender"],
                provider=r["provider"],
                consent=r["recipient__consent_status"],
                context=context,
            )
        )
    return rows


def consent_allows(kind: str, consent: str | None) -> bool:
    """Who may receive what. Campaigns need an opt-in; a STOP reply goes to anyone."""
    if kind == Message.Kind.REPLY:
        return True
    if kind == Message.Kind.CAMPAIGN:
        return consent == ConsentStatus.OPTED_IN
    return consent != ConsentStatus.OPTED_OUT


def _prepare(rows: list[Row], campaigns: dict[int, Campaign], result: BatchResult) -> list[Row]:
    now = timezone.now()
    ready: list[Row] = []
    skipped: list[int] = []
    expired: list[int] = []
    deferred: list[dict] = []
    pools = {
        c.pk: failover.usable(sorted((s for s in c.senders.all() if s.is_active), key=lambda s: s.number))
        for c in campaigns.values()
    }
    for row in rows:
        campaign = campaigns.get(row.campaign_id) if row.campaign_id else None
        if not consent_allows(row.kind, row.consent):
            skipped.append(row.id)
            continue
        if campaign is not None:
            if campaign.valid_until and now >= campaign.valid_until:
                expired.append(row.id)
                continue
            if campaign.quiet_hours_start and campaign.quiet_hours_end:
                opens = next_allowed(row.to, now, campaign.quiet_hours_start, campaign.quiet_hours_end)
                if opens is not None:
                    deferred.append({"id": row.id, "due_at": opens})
                    continue
            row.body = _compose(render(campaign.body, row.context), campaign.add_stop_footer, campaign.smart_encoding)
            row.media_urls = list(campaign.media_urls or [])
            sender = _pick_sender(pools[campaign.pk], row.recipient_id or row.id)
            if sender is None:
                skipped.append(row.id)
                continue
            row.sender, row.provider = sender.number, sender.provider
        row.segments = _segments(row.body)
        ready.append(row)
    if skipped:
        moved = move(
            ids=skipped,
            to=S.SKIPPED,
            allowed_from=[S.CLAIMED],
            finished_at=now,
            error_text="no consent or no sender",
        )
        result.skipped += len(moved)
    if expired:
        moved = move(
            ids=expired,
            to=S.EXPIRED,
            allowed_from=[S.CLAIMED],
            finished_at=now,
            error_text="validity period ended",
        )
        result.skipped += len(moved)
    if deferred:
        # Held for quiet hours: back to pending with a due time; beat dispatches it then.
        bulk_set([{**d, "enqueued_at": None} for d in deferred], ["due_at", "enqueued_at"])
        move(ids=[d["id"] for d in deferred], to=S.PENDING, allowed_from=[S.CLAIMED])
        result.deferred += len(deferred)
    return ready


@lru_cache(maxsize=4096)
def _compose(text: str, add_stop_footer: bool, smart_encoding: bool) -> str:
    # Most campaigns render to a handful of distinct texts: compose each once per process.
    return compose_body(text, add_stop_footer=add_stop_footer, smart_encoding=smart_encoding)


@lru_cache(maxsize=4096)
def _segments(text: str) -> int:
    return analyze(text).segments or 1


def _pick_sender(pool, key: int):
    """Sticky: the same recipient keeps the same number while the pool is unchanged."""
    if not pool:
        return None
    digest = int.from_bytes(hashlib.blake2b(str(key).encode(), digest_size=4).digest(), "big")
    return pool[digest % len(pool)]


def _chunks(rows: list[Row], campaigns: dict[int, Campaign]):
    """Short chunks, so pause and opt-out act within a second and a crash leaves few outcomes unknown."""
    if not rows:
        return
    rates = _number_rates(rows, campaigns)
    total_rate = sum(rates.get(sender, 0) for sender in {r.sender for r in rows})
    unlimited = any(rates.get(r.sender, 0) <= 0 for r in rows)
    # A quarter second of sending per chunk: rows become "sending" just before their requests.
    size = len(rows) if unlimited or total_rate <= 0 else max(1, int(total_rate / 4))
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def _send_chunk(chunk: list[Row], campaigns: dict[int, Campaign], result: BatchResult) -> bool:
    """Send one chunk. Returns False when the rest of the batch must not be sent."""
    now = timezone.now()
    campaign_ids = {r.campaign_id for r in chunk if r.campaign_id}
    halted = set(
        Campaign.objects.filter(pk__in=campaign_ids)
        .exclude(status=Campaign.Status.SENDING)
        .values_list("pk", flat=True)
    )
    recipient_ids = [r.recipient_id for r in chunk if r.recipient_id]
    # Opt-outs announced from here on are seen by the guard just before each request.
    watch = RecentOptOuts(since=time.time() - 2)
    consent = (
        dict(Recipient.objects.filter(pk__in=recipient_ids).values_list("pk", "consent_status"))
        if recipient_ids
        else {}
    )
    go, release, skip = [], [], []
    for row in chunk:
        if row.campaign_id in halted:
            release.append(row.id)
        elif row.recipient_id and not consent_allows(row.kind, consent.get(row.recipient_id)):
            skip.append(row.id)
        else:
            go.append(row)
    if skip:
        result.skipped += len(
            move(
                ids=skip,
                to=S.SKIPPED,
                allowed_from=[S.CLAIMED],
                finished_at=now,
                error_text="opted out",
            )
        )
    if release:
        _release(release, result)
    if not go:
        return not halted
    lease = now + timedelta(seconds=settings.SMS_LEASE_SECONDS)
    bulk_set(
        [
            {
                "id": r.id,
                "body": r.body,
                "sender": r.sender,
                "provider": r.provider,
                "segments": r.segments,
                "media_urls": r.media_urls,
                "attempts": r.attempts + 1,
                "lease_expires_at": lease,
            }
            for r in go
        ],
        ["body", "sender", "provider", "segments", "media_urls", "attempts", "lease_expires_at"],
    )
    moved = {m[0] for m in move(ids=[r.id for r in go], to=S.SENDING, allowed_from=[S.CLAIMED])}
    go = [r for r in go if r.id in moved]
    outbound = [
        OutboundSMS(
            ref=str(r.id),
            to=r.to,
            sender=r.sender,
            body=r.body,
            media_urls=tuple(r.media_urls),
            provider=r.provider,
        )
        for r in go
    ]
    rates = _number_rates(go, campaigns)
    guard = _send_guard(rates, {r.id: r.segments for r in go}, {r.id: r.kind for r in go}, watch)
    outcomes = get_backend().send_messages(outbound, guard=guard)
    _record(go, outcomes, campaigns, result)
    return not halted


def _number_rates(rows: list[Row], campaigns: dict[int, Campaign]) -> dict[str, float]:
    """Messages-per-second per sender number: the campaign's pool, else the number's grants."""
    rates = {s.number: s.max_mps for c in campaigns.values() for s in c.senders.all()}
    others = {r.sender for r in rows if r.sender not in rates}
    if others:
        from accounts.models import AuthorizedSender

        for number, mps in AuthorizedSender.objects.filter(number__in=others, is_active=True).values_list(
            "number", "max_mps"
        ):
            # Several people may hold the same number: the strictest limit wins (0 = none).
            if mps > 0:
                rates[number] = min(rates.get(number) or mps, mps)
    return rates


def _send_guard(rates: dict[str, float], segments: dict[int, int], kinds: dict[int, str], watch: RecentOptOuts):
    """Runs just before each request: waits for rate tokens, then re-checks for a fresh opt-out."""
    provider_rates = settings.SMS_PROVIDER_MPS

    async def guard(message: OutboundSMS) -> bool:
        limits = [(f"number:{message.sender}", rates.get(message.sender, 0))]
        if provider_rates.get(message.provider):
            limits.append((f"provider:{message.provider}", provider_rates[message.provider]))
        await get_limiter().acquire(limits, segments.get(int(message.ref), 1))
        if kinds.get(int(message.ref)) == Message.Kind.REPLY:
            return True  # the one confirmation of a STOP goes to people who just opted out
        return not await watch.contains(message.to)

    return guard


def _release(ids: list[int], result: BatchResult) -> None:
    """Claimed rows that were never sent go back to pending (paused campaign)."""
    if ids:
        result.released += len(move(ids=ids, to=S.PENDING, allowed_from=[S.CLAIMED], enqueued_at=None))


def backoff_seconds(attempt: int, retry_after: float | None = None) -> float:
    """Exponential backoff with full jitter; a provider's Retry-After is a floor."""
    base = settings.SMS_RETRY_BASE_SECONDS * (2 ** max(0, attempt - 1))
    delay = random.uniform(base / 2, base)
    return max(delay, retry_after or 0)


def _record(
    rows: list[Row],
    outcomes: list[SendOutcome],
    campaigns: dict[int, Campaign],
    result: BatchResult,
) -> None:
    now = timezone.now()
    by_id = {r.id: r for r in rows}
    accepted: list[dict] = []
    failures: dict[tuple[str, str, bool], list[int]] = defaultdict(list)
    retries: list[dict] = []
    released: list[int] = []
    opted_out: list[int] = []
    auth_failed: dict[int, str] = {}
    stats: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for outcome in outcomes:
        row = by_id[int(outcome.ref)]
        if outcome.skipped:
            released.append(row.id)
            continue
        if outcome.accepted:
            accepted.append(
                {
                    "id": row.id,
                    "provider_message_id": outcome.provider_message_id[:100],
                    "sent_at": now,
                }
            )
            stats[row.provider][0] += 1
            continue
        error: ProviderError = outcome.error  # type: ignore[assignment]
        stats[row.provider][1] += 1
        code, text = (
            (error.code or (str(error.http_status) if error.http_status else ""))[:20],
            error.message[:255],
        )
        if isinstance(error, AuthenticationFailed | ConfigurationError) and row.campaign_id:
            # Every send would fail the same way: pause rather than burn through the list.
            released.append(row.id)
            auth_failed[row.campaign_id] = f"{row.provider} cannot be used: {text}"
        elif error.permanent:
            failures[(code, text, True)].append(row.id)
            if isinstance(error, RecipientOptedOut) and row.recipient_id:
                opted_out.append(row.recipient_id)
        elif row.attempts + 1 >= settings.SMS_MAX_ATTEMPTS:
            failures[(code, text, False)].append(row.id)
        else:
            due = now + timedelta(seconds=backoff_seconds(row.attempts + 1, error.retry_after))
            retries.append(
                {
                    "id": row.id,
                    "due_at": due,
                    "error_code": code,
                    "error_text": text,
                    "error_permanent": False,
                    "enqueued_at": None,
                }
            )

    if accepted:
        bulk_set(accepted, ["provider_message_id", "sent_at"])
        move(
            ids=[a["id"] for a in accepted],
            to=S.QUEUED,
            allowed_from=[S.CLAIMED, S.SENDING, S.UNKNOWN],
        )
        result.accepted += len(accepted)
    for (code, text, permanent), ids in failures.items():
        moved = move(
            ids=ids,
            to=S.FAILED,
            allowed_from=[S.SENDING, S.UNKNOWN],
            error_code=code,
            error_text=text,
            error_permanent=permanent,
            finished_at=now,
        )
        result.failed += len(moved)
    if retries:
        bulk_set(retries, ["due_at", "error_code", "error_text", "error_permanent", "enqueued_at"])
        result.retrying += len(move(ids=[r["id"] for r in retries], to=S.PENDING, allowed_from=[S.SENDING]))
    if released:
        result.released += len(move(ids=released, to=S.PENDING, allowed_from=[S.SENDING, S.CLAIMED], enqueued_at=None))
        Message.objects.filter(pk__in=released, attempts__gt=0).update(attempts=F("attempts") - 1)
    for recipient in Recipient.objects.filter(pk__in=opted_out):
        from recipients.services import recipient_opt_out

        recipient_opt_out(
            recipient=recipient,
            channel="provider",
            evidence="The provider refused a send: the recipient had opted out there (replied STOP).",
            actor_description="provider",
        )
    for campaign_id, reason in auth_failed.items():
        from campaigns.services import campaign_auto_pause

        campaign_auto_pause(campaign_id=campaign_id, reason=reason)
    for provider, (ok, bad) in stats.items():
        failover.record(provider=provider, ok=ok, failed=bad, campaigns=list(campaigns.values()))
    for campaign in campaigns.values():
        ok = sum(1 for a in accepted if by_id[a["id"]].campaign_id == campaign.pk)
        bad = sum(len([i for i in ids if by_id[i].campaign_id == campaign.pk]) for ids in failures.values())
        bad += sum(1 for r in retries if by_id[r["id"]].campaign_id == campaign.pk)
        _watch_failure_rate(campaign, ok, bad)


def _watch_failure_rate(campaign: Campaign, ok: int, bad: int) -> None:
    """Auto-pause a campaign whose recent sends mostly fail."""
    from django.core.cache import cache

    if ok + bad == 0:
        return
    key = f"campaign:{campaign.pk}:recent"
    window = cache.get(key) or [0, 0]
    window = [window[0] * 0.9 + ok, window[1] * 0.9 + bad]  # a decaying window of recent sends
    cache.set(key, window, timeout=3600)
    total = window[0] + window[1]
    if total >= settings.SMS_AUTO_PAUSE_MIN_SENDS and window[1] / total > settings.SMS_AUTO_PAUSE_FAILURE_RATE:
        from campaigns.services import campaign_auto_pause

        rate = round(100 * window[1] / total)
        campaign_auto_pause(campaign_id=campaign.pk, reason=f"{rate}% of recent sends failed")
        cache.delete(key)


__all__ = ["BatchResult", "backoff_seconds", "consent_allows", "send_batch"]
