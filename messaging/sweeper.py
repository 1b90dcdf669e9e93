"""What beat repairs every few seconds after crashes: leases, lost tasks, outcomes never reported."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from messaging import dispatch
from messaging.models import Message, MessageStatus
from messaging.transitions import move
from providers import events, registry

S = MessageStatus
NO_REPORT = "no_report"


def run(now: datetime | None = None) -> None:
    now = now or timezone.now()
    # Leases: claimed rows never reached the wire and go back; sending rows are unknown (lost answer).
    expired = Message.objects.filter(status__in=[S.CLAIMED, S.SENDING], lease_expires_at__lt=now)
    for status, to in ((S.CLAIMED, S.PENDING), (S.SENDING, S.UNKNOWN)):
        ids = list(expired.filter(status=status).values_list("pk", flat=True)[:10000])
        fields = {"enqueued_at": None} if to == S.PENDING else {}
        move(ids=ids, to=to, allowed_from=[status], **fields)
    resend_unreported(now=now)
    dispatch.requeue_stale(now=now)
    dispatch.queue_due(campaign_id=None, now=now)  # one-offs whose task was lost


def resend_unreported(*, now: datetime) -> tuple[int, int]:
    """``unknown`` rows that heard no report for :func:`silence_limit` since their answer was lost
    (``lease_expires_at``): the provider reports every message it accepts, so this one most likely
    never reached it. Sent again once (back to pending, due now: the claim path still checks the
    campaign's pause and validity), or failed when no attempt is left. Returns ``(again, failed)``.

    A move only takes rows still ``unknown``: a report that settled one meanwhile, or a second sweeper
    run, leaves it alone, so a row goes out again at most once per lost answer. A row with a stored
    report of its provider heard one, even if it was not applied: that report settles it instead,
    unless the drain was given it again once already and still could not apply it (the row cannot
    take it): then the row is treated as one that heard nothing, the report named as evidence.
    """
    limits = {name: silence_limit(name) for name in registry.names()}
    silent = Q(lease_expires_at__lt=now - timedelta(seconds=silence_limit(""))) & ~Q(provider__in=list(limits))
    for name, seconds in limits.items():
        silent |= Q(provider=name, lease_expires_at__lt=now - timedelta(seconds=seconds))
    found = list(
        Message.objects.filter(silent, status=S.UNKNOWN).values_list("pk", "attempts", "error_code", "provider")[:10000]
    )
    # A report stored but not applied (it came while the row could not take it) is evidence the
    # provider took the message: handed to the drain again (once), which settles the row.
    heard = events.reports_heard(refs={str(pk): provider for pk, _, _, provider in found}, now=now)
    by_kind: dict[tuple[bool, str, tuple[str, ...], float], list[int]] = defaultdict(list)
    for pk, attempts, code, provider in found:
        if str(pk) not in heard.waiting:
            left = attempts < settings.SMS_MAX_ATTEMPTS
            by_kind[(left, code, heard.spent.get(str(pk), ()), silence_limit(provider))].append(pk)
    resent = failed = 0
    for (left, code, spent, window), ids in by_kind.items():
        # The lost answer's own code stays in the text: the evidence of why it went out again.
        waited = f"no report {window:.0f} s after a lost answer ({code or 'worker lost'})"
        if spent:
            waited = _with_ids(
                f"no report it could take {window:.0f} s after a lost answer ({code or 'worker lost'})", spent
            )
        if left:
            resent += len(
                move(
                    ids=ids,
                    to=S.PENDING,
                    allowed_from=[S.UNKNOWN],
                    due_at=now,
                    enqueued_at=None,
                    error_code=NO_REPORT,
                    error_text=f"{waited}: sent again",
                    error_permanent=False,
                )
            )
        else:
            failed += len(
                move(
                    ids=ids,
                    to=S.FAILED,
                    allowed_from=[S.UNKNOWN],
                    error_code=NO_REPORT,
                    error_text=f"{waited}, no attempt left" + ("" if spent else ": most likely never sent"),
                    error_permanent=True,
                    finished_at=now,
                )
            )
    return resent, failed


def _with_ids(text: str, provider_ids: tuple[str, ...]) -> str:
    """``text`` naming the provider ids of the reports the row could not take, cut to leave room in
    ``error_text`` (255) for the outcome that follows it."""
    named = f"{text}; reports stored, not applicable: {', '.join(provider_ids)}"
    return named if len(named) <= 200 else named[:199] + "…"


def silence_limit(provider: str) -> float:
    """Seconds of silence after a lost answer before a message sent through ``provider`` goes out again:
    ``SMS_UNKNOWN_RESEND_SECONDS`` if set, else the provider's own bound (its registry entry)."""
    return settings.SMS_UNKNOWN_RESEND_SECONDS or registry.silence_means_unsent_after(provider)
