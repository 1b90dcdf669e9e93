"""Reads for the relay. Real numbers are shown to admins only; everyone else sees them masked."""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser
from django.db.models import QuerySet

from accounts.models import User
from accounts.permissions import has_role
from relay.models import Conversation, RelayMessage, RelayNumber
from smsportal.logging import mask_phone


def relay_can_see_numbers(*, user: User | AnonymousUser) -> bool:
    return has_role(user, "admin")


def relay_can_manage(*, user: User | AnonymousUser) -> bool:
    """Admins and senders create and close conversations; viewers only read."""
    return has_role(user, "sender")


def shown_number(*, number: str, user: User | AnonymousUser) -> str:
    return number if relay_can_see_numbers(user=user) else mask_phone(number)


def relay_message_hidden_fields(*, field: str, number: str, user: User | AnonymousUser) -> dict[str, object]:
    """What replaces the identifying fields of a relay message (``kind == "relay"``) for someone who may
    not see real numbers: the participant's number (``field``, e.g. ``to``) masked, and no recipient id
    (it would lead to the number). Empty for those who may see them. Every other place that lists
    messages (the messages API) applies this, so the rule stays the relay pages' rule."""
    if relay_can_see_numbers(user=user):
        return {}
    return {field: mask_phone(number), "recipient": None}


def conversation_list(*, status: str | None = None) -> QuerySet[Conversation]:
    conversations = Conversation.objects.select_related("virtual_for_a", "virtual_for_b", "created_by")
    if status:
        conversations = conversations.filter(status=status)
    return conversations


def conversation_get(*, pk: int) -> Conversation | None:
    return conversation_list().filter(pk=pk).first()


def conversation_transcript(*, conversation: Conversation) -> QuerySet[RelayMessage]:
    return conversation.transcript.select_related("message").order_by("received_at", "id")


def relay_number_list(*, active_only: bool = False) -> QuerySet[RelayNumber]:
    numbers = RelayNumber.objects.all()
    return numbers.filter(is_active=True) if active_only else numbers


def conversation_view(*, conversation: Conversation, user: User | AnonymousUser) -> dict:
    """A conversation as the given user may see it."""
    return {
        "id": conversation.pk,
        "status": conversation.status,
        "participant_a": shown_number(number=conversation.participant_a, user=user),
        "participant_b": shown_number(number=conversation.participant_b, user=user),
        "name_a": conversation.name_a,
        "name_b": conversation.name_b,
        "virtual_for_a": conversation.virtual_for_a.number,
        "virtual_for_b": conversation.virtual_for_b.number,
        "close_reason": conversation.close_reason,
        "expires_at": conversation.expires_at,
        "created_by": conversation.created_by.username if conversation.created_by else None,
        "created_at": conversation.created_at,
        "closed_at": conversation.closed_at,
    }


def transcript_view(*, conversation: Conversation, user: User | AnonymousUser) -> list[dict]:
    return [
        {
            "id": m.pk,
            "direction": m.direction,
            "outcome": m.outcome,
            "from_number": shown_number(number=m.from_number, user=user),
            "to_virtual": m.to_virtual,
            "text": m.text,
            "media_urls": [u for u in m.media_urls if str(u).startswith(("https://", "http://"))],
            "message_id": m.message_id,
            "delivery_status": m.message.status if m.message else None,
            "received_at": m.received_at,
        }
        for m in conversation_transcript(conversation=conversation)
    ]
