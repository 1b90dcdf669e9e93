"""Celery tasks of campaigns: launch's row creation and the campaign sweeper (the send task is messaging's)."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from celery import shared_task
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from campaigns import counters, dispatch, services
from campaigns.models import Campaign
from campaigns.signals import campaign_status_changed
from messaging import engine
from messaging.models import Message, MessageStatus
from messaging.transitions import move

logger = logging.getLogger(__name__)
S = MessageStatus


@shared_task(name="campaigns.materialize", ignore_result=True, acks_late=True)
def materialize(campaign_id: int) -> int:
    """Start (or restart, after a resume) a sending campaign: its first rows are made and queued.

    The rest are made batch by batch just ahead of the senders (campaigns/dispatch.py).
    """
    return dispatch.dispatch(campaign_id=campaign_id, wait=True)


def _locked(name: str, seconds: int) -> bool:
    """A non-blocking lock: an overlapping periodic run is skipped, not queued."""
    return cache.add(f"lock:{name}", 1, timeout=seconds)


@shared_task(name="campaigns.sweep", ignore_result=True)
def sweep() -> None:
    if not _locked("sweep", 30):
        return
    try:
        run_sweep()
    finally:
        cache.delete("lock:sweep")


def run_sweep(now: datetime | None = None) -> None:
    """Start due campaigns, expire and complete sending ones, finish cancelling cancelled ones.

    The send path's own repairs (leases, lost tasks) are messaging's sweeper.
    """
    now = now or timezone.now()
    for campaign_id in Campaign.objects.filter(status=Campaign.Status.SCHEDULED, send_at__lte=now).values_list(
        "pk", flat=True
    ):
        services.campaign_start_scheduled(campaign_id=campaign_id)

    for campaign in Campaign.objects.filter(status=Campaign.Status.SENDING):
        if campaign.valid_until and campaign.valid_until <= now:
            ids = list(Message.objects.filter(campaign=campaign, status=S.PENDING).values_list("pk", flat=True)[:20000])
            if move(
                ids=ids,
                to=S.EXPIRED,
                allowed_from=[S.PENDING],
                finished_at=now,
                error_text="validity period ended",
            ):
                services.campaign_record_expiry(campaign_id=campaign.pk)
        dispatch.dispatch(campaign_id=campaign.pk, now=now)  # also makes rows when none are ready
        if not campaign.materialized:
            continue  # recipients still without a row: not complete
        open_rows = Message.objects.filter(campaign=campaign, status__in=[S.PENDING, S.CLAIMED, S.SENDING, S.UNKNOWN])
        if not open_rows.exists():
            with transaction.atomic():
                if Campaign.objects.filter(pk=campaign.pk, status=Campaign.Status.SENDING).update(
                    status=Campaign.Status.COMPLETED, completed_at=now
                ):
                    campaign_status_changed.send(
                        sender=Campaign, campaign_id=campaign.pk, status=Campaign.Status.COMPLETED, reason=""
                    )
    for campaign_id in Campaign.objects.filter(
        status=Campaign.Status.CANCELLED, cancelled_at__gte=now - timedelta(days=1)
    ).values_list("pk", flat=True):
        services.cancel_pending(campaign_id=campaign_id)


@shared_task(name="campaigns.probe_auto_paused", ignore_result=True)
def probe_auto_paused() -> None:
    """Send one message of each campaign the system paused; if it goes through, resume the campaign.

    The probe is a real row of the campaign sent through the engine (claimed, leased, recorded as
    any other), so it is sent at most once; a failed probe goes back to pending with its backoff.
    A campaign a person paused is never probed. At most one probe per campaign per
    ``SMS_AUTO_RESUME_PROBE_SECONDS``.
    """
    now = timezone.now()
    for campaign_id in Campaign.objects.filter(status=Campaign.Status.PAUSED, auto_paused=True).values_list(
        "pk", flat=True
    ):
        if not cache.add(f"campaign:{campaign_id}:probe", 1, timeout=settings.SMS_AUTO_RESUME_PROBE_SECONDS):
            continue
        row = _probe_row(campaign_id=campaign_id, now=now)
        if row is None:
            continue
        result = engine.send_batch(message_ids=[row], probe=True)
        if result.accepted:
            provider = Message.objects.filter(pk=row).values_list("provider", flat=True).first() or "the provider"
            services.campaign_auto_resume(
                campaign_id=campaign_id, detail=f"A probe send through {provider} succeeded: sending again."
            )


def _probe_row(*, campaign_id: int, now: datetime) -> int | None:
    """A due pending row of the campaign; if none is left, the next recipient's row is made for it."""
    due = Message.objects.filter(campaign_id=campaign_id, status=S.PENDING, due_at__lte=now).order_by("due_at", "id")
    row = due.values_list("pk", flat=True).first()
    if row is None:
        campaign = Campaign.objects.filter(pk=campaign_id, materialized=False).first()
        if campaign is not None:
            list_ids = list(campaign.lists.values_list("pk", flat=True))
            made = dispatch.materialize_chunk(campaign=campaign, list_ids=list_ids, chunk=1)
            row = made[0] if made else None
    return row


@shared_task(name="campaigns.squash_counters", ignore_result=True)
def squash_counters() -> None:
    if not _locked("squash", 120):
        return
    try:
        for campaign_id in counters.campaigns_to_squash():
            counters.squash(campaign_id)
    finally:
        cache.delete("lock:squash")
