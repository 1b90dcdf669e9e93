"""Writes for campaigns: launch, pause, resume, cancel, retry. Views, API and tasks call these."""

from __future__ import annotations

import logging
from collections.abc import Collection
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.db import DatabaseError, transaction
from django.db.models import Q
from django.utils import timezone

from accounts.services import audit_record
from campaigns import recent_outcomes, tasks
from campaigns.audience import nobody_reachable_reason
from campaigns.counters import campaign_counts
from campaigns.estimates import campaign_estimate
from campaigns.models import Campaign, CampaignEvent
from campaigns.signals import campaign_status_changed
from messaging.compose import compose_body, validate_media_urls
from messaging.encoding import MAX_BODY_CHARS
from messaging.models import Message, MessageStatus
from messaging.templating import STANDARD_VARIABLES, TemplateError, validate
from messaging.transitions import move
from recipients.selectors import attribute_keys_for_lists
from smsportal.queueing import enqueue

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser

    from accounts.models import User

logger = logging.getLogger(__name__)
S = MessageStatus


class TransitionError(Exception):
    """A campaign cannot move from its current status to the one asked for (HTTP 409)."""


def _audit(actor: User | AnonymousUser, action: str, campaign: Campaign, detail: str = "") -> None:
    audit_record(actor=actor, action=action, target=campaign, detail=detail)


def campaign_known_variables(*, campaign: Campaign) -> set[str]:
    """Variables a body may use: the standard ones plus every attribute key of the targeted recipients."""
    return set(STANDARD_VARIABLES) | attribute_keys_for_lists(
        list_ids=list(campaign.lists.values_list("pk", flat=True))
    )


def campaign_validate_for_launch(*, campaign: Campaign, user: User | AnonymousUser) -> None:
    """Everything that must be true before launch, as one ValidationError with field messages."""
    errors: dict[str, list[str]] = {}
    if not campaign.body.strip():
        errors.setdefault("body", []).append("The message body is empty.")
    else:
        try:
            validate(campaign.body, known=campaign_known_variables(campaign=campaign))
        except TemplateError as exc:
            errors.setdefault("body", []).append(str(exc))
        composed = compose_body(
            campaign.body,
            add_stop_footer=campaign.add_stop_footer,
            smart_encoding=campaign.smart_encoding,
        )
        if len(composed) > MAX_BODY_CHARS:
            errors.setdefault("body", []).append(f"The message is longer than {MAX_BODY_CHARS} characters.")
    try:
        validate_media_urls(list(campaign.media_urls or []))
    except ValueError as exc:
        errors.setdefault("media_urls", []).append(str(exc))
    lists = list(campaign.lists.all())
    if not lists:
        errors.setdefault("lists", []).append("Choose at least one recipient list.")
    if any(lst.is_archived for lst in lists):
        errors.setdefault("lists", []).append("Archived lists cannot be targeted.")
    elif lists and (nobody := nobody_reachable_reason(list_ids=[lst.pk for lst in lists])):
        errors.setdefault("lists", []).append(nobody)
    senders = list(campaign.senders.all())
    if not senders:
        errors.setdefault("senders", []).append("Choose at least one sender number.")
    for sender in senders:
        if not sender.is_active:
            errors.setdefault("senders", []).append(f"{sender.number} is not active.")
        if sender.user_id != user.pk:
            errors.setdefault("senders", []).append(f"You are not authorized to send from {sender.number}.")
    if not getattr(user, "can_send", False):
        errors.setdefault("__all__", []).append("Your role may not send messages.")
    if campaign.valid_until and campaign.valid_until <= (campaign.send_at or timezone.now()):
        errors.setdefault("valid_until", []).append("The validity period ends before sending would start.")
    if bool(campaign.send_window_start) != bool(campaign.send_window_end):
        errors.setdefault("send_window_start", []).append("Give both ends of the sending window, or neither.")
    if errors:
        raise ValidationError(errors)


def campaign_launch(*, campaign: Campaign, user) -> Campaign:
    """Launch a draft: now, or at ``send_at``. Launching twice, or racing, creates nothing twice.

    The row is locked before it is validated, so an edit in flight (campaigns/drafts.py locks it
    too) either commits first and is what gets validated and sent, or finds it launched and fails.
    """
    with transaction.atomic():
        Campaign.objects.select_for_update().filter(pk=campaign.pk).first()
        campaign.refresh_from_db()
        campaign_validate_for_launch(campaign=campaign, user=user)
        now = timezone.now()
        scheduled = campaign.send_at is not None and campaign.send_at > now + timedelta(seconds=5)
        new_status = Campaign.Status.SCHEDULED if scheduled else Campaign.Status.SENDING
        changed = Campaign.objects.filter(pk=campaign.pk, status=Campaign.Status.DRAFT).update(
            status=new_status,
            launched_at=now,
            updated_at=now,
        )
        if not changed:
            raise TransitionError(
                f"Only a draft can be launched; this campaign is {campaign.get_status_display().lower()}."
            )
        _audit(user, "campaign.launch", campaign, "scheduled" if scheduled else "")
        if not scheduled:
            transaction.on_commit(lambda: _start_materializing(campaign.pk))
    # Counted once the launch has committed, so the first sends do not wait for a count of the whole
    # audience (a second at a million recipients). The budget's guard needs it only once a price came in.
    try:
        with transaction.atomic():  # (a savepoint, should a caller's transaction surround the launch)
            Campaign.objects.filter(pk=campaign.pk).update(**_estimate_fields(campaign))
    except DatabaseError:  # the launch stands: answer it, without an estimate, rather than fail it
        logger.exception("could not store the launch estimate of campaign %s", campaign.pk)
    campaign.refresh_from_db()
    return campaign


def _estimate_fields(campaign: Campaign) -> dict[str, int | None]:
    """The launch estimate, stored so the campaign page can show it beside the actual cost afterwards."""
    estimated = campaign_estimate(campaign=campaign)
    return {
        "estimated_cost_micros": estimated.micros if estimated else None,
        # Rows are made as it sends (campaigns/dispatch.py): progress counts against this meanwhile.
        "audience_total": estimated.recipients if estimated else None,
    }


# A launch is committed as ``sending`` before its task is queued. If the broker cannot take the
# task (down or hung), the request still answers at once: the campaign sweeper (beat, every 5 s)
# queues the start of every sending campaign that has no messages yet, once the broker is back.
_SWEEPER_STARTS_IT = "the campaign sweeper picks it up when the broker answers again"


def _start_materializing(campaign_id: int) -> None:
    enqueue(tasks.materialize, campaign_id, fallback=_SWEEPER_STARTS_IT)


def campaign_start_scheduled(*, campaign_id: int) -> bool:
    """Beat calls this when a scheduled campaign is due."""
    changed = Campaign.objects.filter(pk=campaign_id, status=Campaign.Status.SCHEDULED).update(
        status=Campaign.Status.SENDING, updated_at=timezone.now()
    )
    if changed:
        _start_materializing(campaign_id)
    return bool(changed)


def _set_status(
    campaign: Campaign, *, to: str, allowed: Collection[str], also: Q | None = None, **fields: Any
) -> Campaign:
    """Move ``campaign`` to ``to`` if its status is in ``allowed`` (or it matches ``also``), in one UPDATE."""
    now = timezone.now()
    match = Q(status__in=allowed) | also if also is not None else Q(status__in=allowed)
    with transaction.atomic():
        changed = Campaign.objects.filter(match, pk=campaign.pk).update(status=to, updated_at=now, **fields)
        if changed:
            campaign_status_changed.send(
                sender=Campaign, campaign_id=campaign.pk, status=to, reason=str(fields.get("pause_reason", ""))
            )
    campaign.refresh_from_db()
    if not changed:
        raise TransitionError(f"A {campaign.get_status_display().lower()} campaign cannot become {to}.")
    return campaign


def campaign_pause(*, campaign: Campaign, user: User, reason: str = "") -> Campaign:
    """Stop new claims at once; messages already on the wire finish.

    A campaign the system paused a moment before (auto-pause, which beat's probe resumes) becomes
    the person's pause: only a person resumes it then. Else the person's pause was refused and the
    probe could resume what they meant to stop."""
    campaign = _set_status(
        campaign,
        to=Campaign.Status.PAUSED,
        allowed={Campaign.Status.SENDING},
        also=Q(status=Campaign.Status.PAUSED, auto_paused=True),
        pause_reason=reason or "Paused by a person",
        auto_paused=False,
    )
    _audit(user, "campaign.pause", campaign, reason)
    return campaign


def campaign_auto_pause(*, campaign_id: int, reason: str, kind: str = "auto_pause") -> bool:
    """The system pauses a sending campaign, with a campaign event of ``kind``.

    ``auto_pause``: no provider the campaign can use works; beat probes it and resumes it.
    ``budget_pause``: the next message would exceed the budget; only a person resumes it (a probe
    would spend past the budget), after raising the budget.
    ``sender_pause``: no number of its pool may send any more (grants revoked, holder withdrawn);
    only a person resumes it, once a number is granted again.
    """
    with transaction.atomic():
        changed = Campaign.objects.filter(pk=campaign_id, status=Campaign.Status.SENDING).update(
            status=Campaign.Status.PAUSED,
            pause_reason=reason[:255],
            auto_paused=kind == "auto_pause",
            updated_at=timezone.now(),
        )
        if changed:
            CampaignEvent.objects.create(campaign_id=campaign_id, kind=kind, detail=reason)
            campaign_status_changed.send(
                sender=Campaign, campaign_id=campaign_id, status=Campaign.Status.PAUSED, reason=reason
            )
    if changed:
        logger.warning("campaign %s auto-paused: %s", campaign_id, reason)
    return bool(changed)


def campaign_record_expiry(*, campaign_id: int) -> None:
    """One ``expiry`` event per campaign, kept up to date with how many messages expired unsent."""
    campaign = Campaign.objects.filter(pk=campaign_id).values("valid_until").first()
    if campaign is None:
        return
    count = campaign_counts(campaign_id)["expired"]
    when = campaign["valid_until"].isoformat(timespec="seconds") if campaign["valid_until"] else "its end"
    detail = f"The validity period ended at {when}: {count} messages expired unsent."
    with transaction.atomic():
        Campaign.objects.select_for_update().filter(pk=campaign_id).values_list("pk").first()  # one writer
        if not CampaignEvent.objects.filter(campaign_id=campaign_id, kind="expiry").update(detail=detail):
            CampaignEvent.objects.create(campaign_id=campaign_id, kind="expiry", detail=detail)


def campaign_auto_resume(*, campaign_id: int, detail: str) -> bool:
    """A probe send succeeded: a campaign the system paused (never one a person paused) sends again."""
    with transaction.atomic():
        changed = Campaign.objects.filter(pk=campaign_id, status=Campaign.Status.PAUSED, auto_paused=True).update(
            status=Campaign.Status.SENDING, pause_reason="", auto_paused=False, updated_at=timezone.now()
        )
        if changed:
            CampaignEvent.objects.create(campaign_id=campaign_id, kind="auto_resume", detail=detail)
            campaign_status_changed.send(
                sender=Campaign, campaign_id=campaign_id, status=Campaign.Status.SENDING, reason=""
            )
    if changed:
        logger.warning("campaign %s resumed on its own: %s", campaign_id, detail)
        transaction.on_commit(lambda: _kick(campaign_id))
    return bool(changed)


def campaign_resume(*, campaign: Campaign, user: User) -> Campaign:
    """Continue where it stopped: only rows still pending are sent, so no duplicates and no gaps."""
    campaign = _set_status(
        campaign, to=Campaign.Status.SENDING, allowed={Campaign.Status.PAUSED}, pause_reason="", auto_paused=False
    )
    _audit(user, "campaign.resume", campaign)
    # Judged afresh on the sends after the resume: failures from before the pause do not fade with
    # time in the per-send window, and would pause it again at once.
    transaction.on_commit(lambda: recent_outcomes.forget(campaign_id=campaign.pk))
    transaction.on_commit(lambda: _kick(campaign.pk))
    return campaign


def _kick(campaign_id: int) -> None:
    enqueue(tasks.materialize, campaign_id, fallback=_SWEEPER_STARTS_IT)


def campaign_cancel(*, campaign: Campaign, user: User) -> Campaign:
    """Cancel: nothing more is sent; the rest of the messages become cancelled."""
    active = {
        Campaign.Status.DRAFT,
        Campaign.Status.SCHEDULED,
        Campaign.Status.SENDING,
        Campaign.Status.PAUSED,
    }
    campaign = _set_status(campaign, to=Campaign.Status.CANCELLED, allowed=active, cancelled_at=timezone.now())
    _audit(user, "campaign.cancel", campaign)
    transaction.on_commit(lambda: cancel_pending(campaign_id=campaign.pk))
    return campaign


def cancel_pending(*, campaign_id: int, chunk: int = 5000) -> int:
    """Mark a cancelled campaign's unsent rows cancelled, a chunk at a time."""
    total = 0
    while True:
        ids = list(
            Message.objects.filter(campaign_id=campaign_id, status__in=[S.PENDING, S.CLAIMED]).values_list(
                "pk", flat=True
            )[:chunk]
        )
        if not ids:
            return total
        total += len(
            move(
                ids=ids,
                to=S.CANCELLED,
                allowed_from=[S.PENDING, S.CLAIMED],
                finished_at=timezone.now(),
            )
        )


def campaign_retry_failed(*, campaign: Campaign, user: User) -> int:
    """Send again only messages that failed for a transient reason, as a new attempt on the same row."""
    if campaign.status not in {
        Campaign.Status.SENDING,
        Campaign.Status.PAUSED,
        Campaign.Status.COMPLETED,
    }:
        raise TransitionError("Only a launched campaign can retry failed messages.")
    ids = list(
        Message.objects.filter(campaign=campaign, status=S.FAILED, error_permanent=False).values_list("pk", flat=True)
    )
    moved = move(
        ids=ids,
        to=S.PENDING,
        allowed_from=[S.FAILED],
        enqueued_at=None,
        due_at=timezone.now(),
        finished_at=None,
    )
    if moved:
        Campaign.objects.filter(pk=campaign.pk, status=Campaign.Status.COMPLETED).update(
            status=Campaign.Status.SENDING, completed_at=None
        )
        transaction.on_commit(lambda: _kick(campaign.pk))
    _audit(user, "campaign.retry_failed", campaign, f"{len(moved)} messages")
    return len(moved)
