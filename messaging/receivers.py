"""Applies normalized delivery reports from the providers package to messages.

A report changes a message only when it is bound to it: our reference (the
message id in the callback URL), the provider and the provider's message id all
agree (:func:`binding`). A report that arrives before the send path has stored
the provider's id (an early callback) is kept and applied by a later drain once
the id is known. The drain never waits for a message row that the send path
holds: it locks the rows it needs in id order with ``SKIP LOCKED`` and keeps the
reports of the rows it skipped for the next drain, so the two cannot deadlock.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime, timedelta
from enum import Enum

from django.conf import settings
from django.db import transaction
from django.dispatch import receiver
from django.utils import timezone

from messaging.costs import apply_costs
from messaging.models import Message, MessageStatus
from messaging.signals import recipients_refused
from messaging.transitions import earlier_than, move
from providers import registry
from providers.signals import group_member_wanted, status_received
from providers.status import DeliveryStatus, StatusEvent, is_message_ref

logger = logging.getLogger(__name__)
S = MessageStatus
_TO_MESSAGE = {
    DeliveryStatus.QUEUED: S.QUEUED,
    DeliveryStatus.SENT: S.SENT,
    DeliveryStatus.DELIVERED: S.DELIVERED,
    DeliveryStatus.UNDELIVERED: S.UNDELIVERED,
    DeliveryStatus.FAILED: S.FAILED,
}
_FINAL = {S.DELIVERED, S.UNDELIVERED, S.FAILED}
# Not sent yet, or its request is in flight: the provider's id may still come.
_ID_MAY_COME = {S.PENDING, S.CLAIMED, S.SENDING}


class Binding(Enum):
    APPLY = "apply"  # ref, provider and provider id agree
    ADOPT = "adopt"  # the send's outcome was lost (unknown): the report names our message and gives its id
    WAIT = "wait"  # the provider id is not known yet: keep the report for a later drain
    IGNORE = "ignore"  # not this message's report


@receiver(status_received)
def apply_status_events(sender: object, events: list[StatusEvent], **kwargs: object) -> set[int]:
    return apply_events(events)


@receiver(group_member_wanted)
def group_member(sender: object, provider: str, members: list[str], destination: str, **kwargs: object) -> str | None:
    """The message of a multi-destination request that went to ``destination`` (a group names each number once)."""
    found = list(
        Message.objects.filter(pk__in=[int(m) for m in members], to=destination, provider=provider).values_list(
            "pk", flat=True
        )[:2]
    )
    return str(found[0]) if len(found) == 1 else None


def binding(event: StatusEvent, *, provider: str, provider_message_id: str, status: str, now: datetime) -> Binding:
    """Whether ``event`` (which names this message) may change the message with these facts."""
    if event.provider != provider and event.provider in registry.names():
        return Binding.IGNORE  # a webhook provider may only report on its own messages
    claimed_id = event.provider_message_id[:100]
    if not claimed_id:
        return Binding.IGNORE
    if provider_message_id:
        return Binding.APPLY if claimed_id == provider_message_id else Binding.IGNORE
    if status == S.UNKNOWN:
        return Binding.ADOPT
    waited = now - event.received_at if event.received_at else timedelta(0)
    if status in _ID_MAY_COME and waited < timedelta(seconds=2 * settings.SMS_LEASE_SECONDS):
        return Binding.WAIT
    return Binding.IGNORE


def apply_events(events: list[StatusEvent]) -> set[int]:
    """Apply the reports bound to their message; returns the ``event_id``s to keep for a later drain.

    Messages only move forward, so duplicates and late reports change nothing.
    """
    now = timezone.now()
    by_message: dict[int, list[StatusEvent]] = defaultdict(list)
    for event in events:
        if is_message_ref(event.message_ref):
            by_message[int(event.message_ref)].append(event)
    kept: set[int] = set()
    bound: list[tuple[int, StatusEvent]] = []
    ignored = len(events) - sum(len(v) for v in by_message.values())
    with transaction.atomic():
        # Lock in id order and skip the rows the send path holds: never wait, never deadlock.
        facts = {
            pk: (provider, provider_id, status)
            for pk, provider, provider_id, status in Message.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(pk__in=list(by_message))
            .order_by("pk")
            .values_list("pk", "provider", "provider_message_id", "status")
        }
        skipped = set(by_message) - set(facts)
        busy = set(Message.objects.filter(pk__in=list(skipped)).values_list("pk", flat=True)) if skipped else set()
        for pk in busy:
            kept.update(e.event_id for e in by_message[pk] if e.event_id is not None)
        ignored += sum(len(by_message[pk]) for pk in skipped - busy)  # no such message
        adopted: dict[int, str] = {}
        for pk, (provider, provider_id, status) in facts.items():
            for event in by_message[pk]:
                verdict = binding(event, provider=provider, provider_message_id=provider_id, status=status, now=now)
                if verdict is Binding.ADOPT:
                    provider_id = adopted[pk] = event.provider_message_id[:100]
                if verdict in (Binding.APPLY, Binding.ADOPT):
                    bound.append((pk, event))
                elif verdict is Binding.WAIT:
                    if event.event_id is not None:  # a stored report; a direct caller's is simply not applied
                        kept.add(event.event_id)
                else:
                    ignored += 1
        _apply(bound, now)
        for pk, provider_id in adopted.items():
            Message.objects.filter(pk=pk, provider_message_id="").update(provider_message_id=provider_id)
        apply_costs([event for _, event in bound])  # only bound reports may price a message
        _opt_out_stopped([pk for pk, event in bound if event.recipient_opted_out])
    if ignored:
        logger.warning("%d delivery report(s) ignored: reference, provider or provider id did not match", ignored)
    return kept


def _apply(bound: list[tuple[int, StatusEvent]], now: datetime) -> None:
    groups: dict[tuple[MessageStatus, str, str], list[int]] = defaultdict(list)
    for pk, event in bound:
        groups[(_TO_MESSAGE[event.status], event.error_code[:20], event.error_text[:255])].append(pk)
    # Apply lower statuses first so a batch holding "sent" and "delivered" ends delivered.
    order = [S.QUEUED, S.SENT, S.UNDELIVERED, S.FAILED, S.DELIVERED]
    for (status, code, text), ids in sorted(groups.items(), key=lambda item: order.index(item[0][0])):
        fields: dict[str, object] = {}
        if status in _FINAL:
            fields["finished_at"] = now
        if status in {S.UNDELIVERED, S.FAILED}:
            fields.update(error_code=code, error_text=text or status, error_permanent=True)
        move(ids=ids, to=status, allowed_from=earlier_than(status), **fields)


def _opt_out_stopped(message_ids: list[int]) -> None:
    """Opt out the recipients whose message failed because they had opted out at the provider."""
    if not message_ids:
        return
    recipient_ids = Message.objects.filter(pk__in=message_ids, recipient__isnull=False).values_list(
        "recipient_id", flat=True
    )
    if recipient_ids:
        recipients_refused.send(
            sender=Message,
            recipient_ids=list(recipient_ids),
            evidence="The provider reported a message as refused: the recipient had opted out there (replied STOP).",
        )
