"""What beat repairs every few seconds after crashes: leases, lost tasks, outcomes never reported."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from messaging import dispatch
from messaging.models import Message, MessageStatus
from messaging.transitions import move

S = MessageStatus


def run(now: datetime | None = None) -> None:
    now = now or timezone.now()
    # Leases: claimed rows never reached the wire and go back; sending rows are unknown.
    expired = Message.objects.filter(status__in=[S.CLAIMED, S.SENDING], lease_expires_at__lt=now)
    for status, to in ((S.CLAIMED, S.PENDING), (S.SENDING, S.UNKNOWN)):
        ids = list(expired.filter(status=status).values_list("pk", flat=True)[:10000])
        fields = {"enqueued_at": None} if to == S.PENDING else {}
        move(ids=ids, to=to, allowed_from=[status], **fields)
    cutoff = now - timedelta(hours=settings.SMS_UNKNOWN_OUTCOME_HOURS)
    ids = list(
        Message.objects.filter(status=S.UNKNOWN, lease_expires_at__lt=cutoff).values_list("pk", flat=True)[:10000]
    )
    move(
        ids=ids,
        to=S.FAILED,
        allowed_from=[S.UNKNOWN],
        error_text="outcome unknown: no report from the provider",
        error_permanent=True,
        finished_at=now,
    )
    dispatch.requeue_stale(now=now)
    dispatch.queue_due(campaign_id=None, now=now)  # one-offs whose task was lost
