"""Applies normalized delivery reports from the providers package to messages."""

from __future__ import annotations

from collections import defaultdict

from django.dispatch import receiver
from django.utils import timezone

from messaging.costs import apply_costs
from messaging.models import Message, MessageStatus
from messaging.signals import recipients_refused
from messaging.transitions import earlier_than, move
from providers.signals import status_received
from providers.status import DeliveryStatus, StatusEvent

S = MessageStatus
_TO_MESSAGE = {
    DeliveryStatus.QUEUED: S.QUEUED,
    DeliveryStatus.SENT: S.SENT,
    DeliveryStatus.DELIVERED: S.DELIVERED,
    DeliveryStatus.UNDELIVERED: S.UNDELIVERED,
    DeliveryStatus.FAILED: S.FAILED,
}
_FINAL = {S.DELIVERED, S.UNDELIVERED, S.FAILED}


@receiver(status_received)
def apply_status_events(sender: object, events: list[StatusEvent], **kwargs: object) -> None:
    apply_events(events)


def apply_events(events: list[StatusEvent]) -> None:
    """Move each message forward only; duplicates and late reports change nothing.

    The callback URL carries our message id, so a report for a message whose
    send outcome was lost (worker killed) still settles it.
    """
    now = timezone.now()
    groups: dict[tuple[MessageStatus, str, str], list[int]] = defaultdict(list)
    provider_ids: dict[int, str] = {}
    for event in events:
        try:
            message_id = int(event.message_ref)
        except (TypeError, ValueError):
            found = (
                Message.objects.filter(provider_message_id=event.provider_message_id)
                .values_list("pk", flat=True)
                .first()
            )
            if found is None:
                continue
            message_id = found
        status = _TO_MESSAGE[event.status]
        groups[(status, event.error_code[:20], event.error_text[:255])].append(message_id)
        if event.provider_message_id:
            provider_ids[message_id] = event.provider_message_id[:100]
    # Apply lower statuses first so a batch holding "sent" and "delivered" ends delivered.
    order = [S.QUEUED, S.SENT, S.UNDELIVERED, S.FAILED, S.DELIVERED]
    for (status, code, text), ids in sorted(groups.items(), key=lambda item: order.index(item[0][0])):
        fields: dict[str, object] = {}
        if status in _FINAL:
            fields["finished_at"] = now
        if status in {S.UNDELIVERED, S.FAILED}:
            fields.update(error_code=code, error_text=text or status, error_permanent=True)
        move(ids=ids, to=status, allowed_from=earlier_than(status), **fields)
    if provider_ids:
        missing = Message.objects.filter(pk__in=list(provider_ids), provider_message_id="").values_list("pk", flat=True)
        for pk in missing:
            Message.objects.filter(pk=pk, provider_message_id="").update(provider_message_id=provider_ids[pk])
    apply_costs(events)
    _opt_out_stopped(events)


def _opt_out_stopped(events: list[StatusEvent]) -> None:
    """Opt out the recipients whose message failed because they had opted out at the provider."""
    refs = [int(e.message_ref) for e in events if e.recipient_opted_out and e.message_ref.isdigit()]
    if not refs:
        return
    recipient_ids = Message.objects.filter(pk__in=refs, recipient__isnull=False).values_list("recipient_id", flat=True)
    if recipient_ids:
        recipients_refused.send(
            sender=Message,
            recipient_ids=list(recipient_ids),
            evidence="The provider reported a message as refused: the recipient had opted out there (replied STOP).",
        )
