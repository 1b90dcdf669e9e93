"""A campaign's part in the send path: the answers messaging.hooks.CampaignSending asks for.

Registered in ``CampaignsConfig.ready``. The engine claims and sends rows; a campaign
decides what each row says and from which number, when it may go out (validity,
the recipients' local send window), and what follows from outcomes (counters,
auto-pause, failover events, the next batches).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Sequence
from datetime import datetime
from functools import lru_cache

from django.conf import settings
from django.db.models import Prefetch, Q

from accounts.models import AuthorizedSender
from accounts.selectors import grants_in_force
from campaigns import counters, dispatch, recent_outcomes, services, shortlinks
from campaigns.models import Campaign, CampaignEvent
from campaigns.selectors import budget_exceeded_by_next
from messaging import failover
from messaging.compose import compose_body
from messaging.engine import Row
from messaging.hooks import CampaignOutcomes, Prepared
from messaging.scheduling import next_allowed
from messaging.templating import render
from recipients.models import template_context

NO_SENDER_LEFT = (
    "No sender number left: its grants were revoked or their holder withdrawn. Grant one again, then resume."
)


class CampaignSending:
    def claimable(self) -> Q:
        return Q(campaign__isnull=True) | Q(campaign__status=Campaign.Status.SENDING)

    def prepare(self, rows: Sequence[Row], *, now: datetime) -> Prepared:
        in_force = Prefetch("senders", queryset=grants_in_force())  # c.senders.all(): only grants in force
        campaigns = {
            c.pk: c for c in Campaign.objects.filter(pk__in={r.campaign_id for r in rows}).prefetch_related(in_force)
        }
        pools = {c.pk: failover.usable(sorted(c.senders.all(), key=lambda s: s.number)) for c in campaigns.values()}
        verdict = Prepared(
            number_rates={s.number: s.max_mps for c in campaigns.values() for s in c.senders.all()},
            valid_until={c.pk: c.valid_until for c in campaigns.values() if c.valid_until},
        )
        # No number left to send from (every grant revoked, or its holder withdrawn): pause rather than
        # skip everyone left; a person resumes once a number is granted again.
        stranded = {pk for pk, pool in pools.items() if not pool}
        for campaign_id in stranded:
            services.campaign_auto_pause(campaign_id=campaign_id, reason=NO_SENDER_LEFT, kind="sender_pause")
        ready: list[tuple[Row, Campaign, str]] = []
        for row in rows:
            if row.campaign_id in stranded:
                verdict.released.append(row.id)
                continue
            campaign = campaigns[row.campaign_id]  # type: ignore[index]  # a campaign row: campaign_id is set
            if campaign.valid_until and now >= campaign.valid_until:
                verdict.expired.append(row.id)
                continue
            if campaign.send_window_start and campaign.send_window_end:
                opens = next_allowed(row.to, now, campaign.send_window_start, campaign.send_window_end)
                if opens is not None:
                    verdict.deferred[row.id] = opens
                    continue
            ready.append((row, campaign, render(campaign.body, template_context(phone=row.to, **row.recipient))))
        # Tracked links for the whole batch at once (one insert and one read).
        links = shortlinks.links_for(
            (campaign.pk, row.recipient_id, url)
            for row, campaign, text in ready
            if campaign.track_links
            for url in shortlinks.find_urls(text)
        )
        for row, campaign, text in ready:
            if campaign.track_links:
                mine = {url: links[(campaign.pk, row.recipient_id, url)] for url in shortlinks.find_urls(text)}
                text = shortlinks.replace_urls(text, mine)
            row.body = _compose(text, campaign.add_stop_footer, campaign.smart_encoding)
            row.media_urls = list(campaign.media_urls or [])
            sender = _pick_sender(pools[campaign.pk], row.recipient_id or row.id)
            if sender is None:
                verdict.skipped.append(row.id)
                continue
            row.sender, row.provider = sender.number, sender.provider
        return verdict

    def revoked(self, rows: Sequence[Row]) -> set[int]:
        # The number must still be a grant in force in the row's campaign: revoked, or its holder
        # deactivated, since the claim.
        campaign_ids = {r.campaign_id for r in rows if r.campaign_id}
        if not campaign_ids:
            return set()
        in_force = set(grants_in_force().filter(campaigns__in=campaign_ids).values_list("campaigns", "number"))
        return {r.id for r in rows if r.campaign_id and (r.campaign_id, r.sender) not in in_force}

    def halted(self, campaign_ids: Iterable[int]) -> set[int]:
        return set(
            Campaign.objects.filter(pk__in=list(campaign_ids))
            .exclude(status=Campaign.Status.SENDING)
            .values_list("pk", flat=True)
        )

    def record_expiry(self, campaign_ids: Iterable[int]) -> None:
        for campaign_id in set(campaign_ids):
            services.campaign_record_expiry(campaign_id=campaign_id)

    def record_transitions(self, moves: Iterable[tuple[int | None, str, str]]) -> None:
        counters.record_transitions(moves)

    def record_costs(self, costs: Sequence[tuple[int, str, int, int]]) -> None:
        counters.record_costs(costs)
        budgeted = Campaign.objects.filter(
            pk__in={c[0] for c in costs}, max_spend_micros__isnull=False, status=Campaign.Status.SENDING
        )
        for campaign in budgeted:
            reason = budget_exceeded_by_next(campaign=campaign)
            if reason:
                services.campaign_auto_pause(campaign_id=campaign.pk, reason=reason, kind="budget_pause")

    def after_outcomes(self, outcomes: Sequence[CampaignOutcomes]) -> None:
        for outcome in outcomes:
            if outcome.pause_reason and not _another_usable_provider(outcome.campaign_id, outcome.unusable_provider):
                # Every send would fail the same way: pause rather than burn through the list.
                services.campaign_auto_pause(campaign_id=outcome.campaign_id, reason=outcome.pause_reason)
            elif not outcome.pause_reason:
                # (otherwise the refused rows went back to pending: failover moves them to the other provider)
                _watch_failure_rate(outcome.campaign_id, outcome.by_provider)

    def provider_health_changed(self, *, provider: str, healthy: bool, campaign_ids: Iterable[int]) -> None:
        detail = (
            f"{provider} {'recovered: sends drift back' if healthy else 'is failing: sends move to the other provider'}"
        )
        mixed = [
            c
            for c in Campaign.objects.filter(pk__in=list(campaign_ids)).prefetch_related("senders")
            if len({s.provider for s in c.senders.all()}) > 1
        ]
        CampaignEvent.objects.bulk_create([CampaignEvent(campaign=c, kind="failover", detail=detail) for c in mixed])

    def after_batch(self, campaign_ids: Iterable[int]) -> None:
        for campaign_id in campaign_ids:
            dispatch.dispatch(campaign_id=campaign_id)


@lru_cache(maxsize=4096)
def _compose(text: str, add_stop_footer: bool, smart_encoding: bool) -> str:
    # Most campaigns render to a handful of distinct texts: compose each once per process.
    return compose_body(text, add_stop_footer=add_stop_footer, smart_encoding=smart_encoding)


def _pick_sender(pool: list[AuthorizedSender], key: int) -> AuthorizedSender | None:
    """Sticky: the same recipient keeps the same number while the pool is unchanged."""
    if not pool:
        return None
    digest = int.from_bytes(hashlib.blake2b(str(key).encode(), digest_size=4).digest(), "big")
    return pool[digest % len(pool)]


def _another_usable_provider(campaign_id: int, provider: str) -> bool:
    """The campaign's pool holds an active number at a healthy provider other than ``provider``."""
    others = (
        grants_in_force()
        .filter(campaigns=campaign_id)
        .exclude(provider=provider)
        .values_list("provider", flat=True)
        .distinct()
    )
    return any(failover.is_healthy(p) for p in others)


def _watch_failure_rate(campaign_id: int, by_provider: dict[str, tuple[int, int]]) -> None:
    """Auto-pause a campaign whose recent sends mostly fail at every provider it can still use.

    Failover goes first. The window is kept per provider; a provider failover has judged failing
    does not count while another of the campaign's providers works (its sends move there, its
    probes keep failing until it heals). With several providers, nothing is decided while
    failover has too few sends to judge one of them. Only when no working provider is left do
    all count: a one-provider pool pauses as soon as its provider fails too much.
    """
    sends = sum(ok + bad for ok, bad in by_provider.values())
    if not sends:
        return
    # Two windows, and the one holding more sends decides: the campaign's last ~30 s (failover's
    # window) and its last ~2 x SMS_AUTO_PAUSE_MIN_SENDS sends. By sends alone, the requests that
    # hung until their read timeout, recorded at once at a campaign's tail, would outweigh the
    # successes sent with them seconds before; by time alone, a slow campaign would never hold
    # enough sends to judge (decaying per recorded group did both). Not failover's health: a
    # provider that works for other campaigns can still fail all of this one's sends.
    # Kept in Redis and updated in one step: every worker records into it at once.
    window = recent_outcomes.record(campaign_id=campaign_id, by_provider=by_provider, now=time.time())
    states = {p: failover.health(p) for p in window}
    usable = [p for p in window if states[p] != failover.FAILING]
    if not usable:
        usable = list(window)  # no working provider left
    elif len(window) > 1 and any(states[p] == failover.UNKNOWN for p in usable):
        return  # failover cannot judge yet, and it goes first
    by_time = [sum(window[p][0] for p in usable), sum(window[p][1] for p in usable)]
    by_sends = [sum(window[p][2] for p in usable), sum(window[p][3] for p in usable)]
    ok_total, bad_total = max(by_time, by_sends, key=sum)
    total = ok_total + bad_total
    if total >= settings.SMS_AUTO_PAUSE_MIN_SENDS and bad_total / total > settings.SMS_AUTO_PAUSE_FAILURE_RATE:
        rate = round(100 * bad_total / total)
        where = " and ".join(sorted(usable))
        services.campaign_auto_pause(
            campaign_id=campaign_id, reason=f"{rate}% of recent sends failed ({where}): no working provider left"
        )
        recent_outcomes.forget(campaign_id=campaign_id)
