"""Writes for the relay: create and close conversations, route inbound messages, expire."""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import phonenumbers
from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Q
from django.utils import timezone

from accounts.services import audit_record
from messaging.keywords import opts_out
from messaging.models import Message
from messaging.services import message_enqueue
from providers import registry as sms_providers
from providers.status import InboundSMS
from recipients.models import ConsentStatus, Recipient, Suppression
from relay.models import Conversation, ConversationLeg, RelayMessage, RelayNumber
from smsportal.phone import InvalidNumber, normalize

if TYPE_CHECKING:
    from accounts.models import User

logger = logging.getLogger(__name__)

_MOBILE_TYPES = {phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE}
# A run of 7+ digits in a display name could be a real number: never put one in an intro.
_DIGIT_RUN = re.compile(r"\d[\d\s().+-]{5,}\d")
_CREATE_ATTEMPTS = 5


def relay_setting(name: str) -> Any:
    """A RELAY_* setting; the defaults and their environment variables are in smsportal/settings.py."""
    return getattr(settings, name)


class RelayError(Exception):
    """A refusal the user can act on; ``field`` names the input at fault, if any."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class PoolExhausted(RelayError):
    pass


def participant_normalize(*, raw: str, field: str = "number") -> str:
    """E.164 of a participant's number: valid, of a known country, able to receive SMS."""
    try:
        e164 = normalize(raw)
    except InvalidNumber as exc:
        raise RelayError(f"{raw!s}: {exc}", field=field) from None
    parsed = phonenumbers.parse(e164)
    if not phonenumbers.region_code_for_number(parsed) or phonenumbers.region_code_for_number(parsed) == "001":
        raise RelayError(f"{raw!s}: the number's country is unknown", field=field)
    if phonenumbers.number_type(parsed) not in _MOBILE_TYPES:
        raise RelayError(f"{raw!s}: not a mobile number, it cannot receive text messages", field=field)
    return e164


def relay_number_create(
    *, number: str, provider: str, label: str = "", is_active: bool = True, actor: User | None = None
) -> RelayNumber:
    """Add a number to the pool; recorded in the audit log when a person did it."""
    try:
        e164 = normalize(number)
    except InvalidNumber as exc:
        raise RelayError(f"{number}: {exc}", field="number") from None
    if RelayNumber.objects.filter(number=e164).exists():
        raise RelayError(f"{e164} is already a relay number", field="number")
    with transaction.atomic():
        relay_number = RelayNumber.objects.create(number=e164, provider=provider, label=label, is_active=is_active)
        if actor is not None:
            audit_record(actor=actor, action="relay.number_add", target=relay_number)
    return relay_number


def relay_number_update(
    *,
    relay_number: RelayNumber,
    provider: str | None = None,
    label: str | None = None,
    is_active: bool | None = None,
    actor: User | None = None,
) -> RelayNumber:
    """Change a pool number's provider, label or active flag (None: keep). The number itself never
    changes, and numbers are never deleted: transcripts refer to them. An inactive number gets no
    new conversations; those already on it go on."""
    fields = {
        name: value
        for name, value in (("provider", provider), ("label", label), ("is_active", is_active))
        if value is not None
    }
    with transaction.atomic():
        if fields:
            RelayNumber.objects.filter(pk=relay_number.pk).update(**fields)
        if actor is not None:
            audit_record(actor=actor, action="relay.number_update", target=relay_number)
    relay_number.refresh_from_db()
    return relay_number


def _check_name(name: str, field: str) -> str:
    name = (name or "").strip()
    if len(name) > 50:
        raise RelayError("Names are at most 50 characters.", field=field)
    if _DIGIT_RUN.search(name):
        raise RelayError("A name must not contain a phone number.", field=field)
    return name


def _lock_real_numbers(numbers: Sequence[str]) -> None:
    """Serialize assignment per real number; the unique constraint is the backstop."""
    with connection.cursor() as cursor:
        for number in sorted(set(numbers)):  # one order everywhere: no deadlocks
            key = int.from_bytes(
                hashlib.blake2b(f"relay:{number}".encode(), digest_size=8).digest(), "big", signed=True
            )
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])


def _free_number(real_number: str) -> RelayNumber:
    """An active relay number this person has no open conversation on, least used first."""
    taken = ConversationLeg.objects.filter(real_number=real_number, is_open=True).values("virtual_number")
    numbers = RelayNumber.objects.filter(is_active=True)
    unreachable = sms_providers.unable_to_send_to(real_number)  # e.g. NANP-only providers abroad
    if unreachable:
        numbers = numbers.exclude(provider__in=unreachable)
    candidate = (
        numbers.exclude(pk__in=taken)
        .annotate(load=Count("legs", filter=Q(legs__is_open=True)))
        .order_by("load", "number")
        .first()
    )
    if candidate is None:
        raise PoolExhausted(
            "No relay number is free for one of these participants: every active relay number is already "
            "in an open conversation with them. Close a conversation or add relay numbers."
        )
    return candidate


def _queue(
    *, to: str, via: RelayNumber, body: str, media_urls: Sequence[str] = (), created_by: User | None = None
) -> Message:
    """An outbound relay message, sent after commit. The engine refuses it if ``to`` has opted out portal-wide."""
    return message_enqueue(
        kind=Message.Kind.RELAY,
        to=to,
        sender=via.number,
        provider=via.provider,
        body=body,
        media_urls=media_urls,
        recipient_id=Recipient.objects.filter(phone=to).values_list("pk", flat=True).first(),
        created_by=created_by,
    )


def _intro(name: str) -> str:
    template: str = relay_setting("RELAY_INTRO_MESSAGE")
    return template.replace("{name}", name or relay_setting("RELAY_DEFAULT_NAME"))


def conversation_create(
    *,
    participant_a: str,
    participant_b: str,
    name_a: str = "",
    name_b: str = "",
    ttl: timedelta | None = None,
    created_by: User | None = None,
) -> Conversation:
    """Open a conversation, pick a virtual number for each side and introduce them (audited as ``created_by``)."""
    a = participant_normalize(raw=participant_a, field="participant_a")
    b = participant_normalize(raw=participant_b, field="participant_b")
    if a == b:
        raise RelayError("The two participants must have different numbers.", field="participant_b")
    for number, field in ((a, "participant_a"), (b, "participant_b")):
        if RelayNumber.objects.filter(number=number).exists():
            raise RelayError(f"{number} is one of our relay numbers, not a person.", field=field)
        if (
            Recipient.objects.filter(phone=number, consent_status=ConsentStatus.OPTED_OUT).exists()
            or Suppression.objects.of(number).exists()
        ):
            raise RelayError(f"{number} has opted out of messages from us.", field=field)
    name_a, name_b = _check_name(name_a, "name_a"), _check_name(name_b, "name_b")
    if ttl is not None and ttl <= timedelta(0):
        raise RelayError("The lifetime must be positive.", field="ttl")
    for _ in range(_CREATE_ATTEMPTS):
        try:
            with transaction.atomic():
                _lock_real_numbers([a, b])
                v_a, v_b = _free_number(a), _free_number(b)
                conversation = Conversation.objects.create(
                    participant_a=a,
                    participant_b=b,
                    name_a=name_a,
                    name_b=name_b,
                    virtual_for_a=v_a,
                    virtual_for_b=v_b,
                    expires_at=timezone.now() + ttl if ttl else None,
                    created_by=created_by,
                )
                ConversationLeg.objects.bulk_create(
                    [
                        ConversationLeg(conversation=conversation, real_number=a, virtual_number=v_a),
                        ConversationLeg(conversation=conversation, real_number=b, virtual_number=v_b),
                    ]
                )
                _queue(to=a, via=v_a, body=_intro(name_b), created_by=created_by)
                _queue(to=b, via=v_b, body=_intro(name_a), created_by=created_by)
                if created_by is not None:
                    audit_record(actor=created_by, action="relay.create", target=conversation)
                return conversation
        except IntegrityError:
            # Someone took the same (real, virtual) pair in between (only without advisory locks).
            continue
    raise PoolExhausted("Relay numbers are busy; please try again.")


def conversation_close(
    *,
    conversation: Conversation,
    reason: str = "closed by staff",
    status: str = Conversation.Status.CLOSED,
    notify: bool = True,
    stopped_by: str | None = None,
    actor: User | None = None,
) -> bool:
    """Close an open conversation and free its numbers. False if it was no longer open.

    Participants are told it ended; one who sent STOP (``stopped_by``) gets
    the STOP confirmation instead.
    """
    now = timezone.now()
    with transaction.atomic():
        changed = Conversation.objects.filter(pk=conversation.pk, status=Conversation.Status.OPEN).update(
            status=status, closed_at=now, close_reason=reason[:100]
        )
        if not changed:
            return False
        ConversationLeg.objects.filter(conversation_id=conversation.pk, is_open=True).update(is_open=False)
        conversation.refresh_from_db()
        if actor is not None:  # a person closed it (not expiry, not a participant's STOP)
            audit_record(actor=actor, action="relay.close", target=conversation)
        if notify:
            sides = [
                (conversation.participant_a, conversation.virtual_for_a),
                (conversation.participant_b, conversation.virtual_for_b),
            ]
            for real, virtual in sides:
                _queue(
                    to=real,
                    via=virtual,
                    body=relay_setting("RELAY_STOP_REPLY" if real == stopped_by else "RELAY_CLOSED_MESSAGE"),
                )
    return True


def conversations_expire(*, now: datetime | None = None) -> int:
    """Expire open conversations whose time is up. Safe to run concurrently."""
    now = now or timezone.now()
    due = Conversation.objects.filter(status=Conversation.Status.OPEN, expires_at__lte=now).select_related(
        "virtual_for_a", "virtual_for_b"
    )
    return sum(
        conversation_close(conversation=c, reason="expired", status=Conversation.Status.EXPIRED) for c in due[:1000]
    )


def _is_stop(text: str) -> bool:
    """A STOP keyword or an opt-out request phrase ("please stop texting me"): both end the conversation."""
    return opts_out(text)


def relay_route_inbound(inbound: InboundSMS) -> bool:
    """Inbound router: consume anything sent to a relay number. Registered in RelayConfig.ready."""
    relay_number = RelayNumber.objects.filter(number=inbound.to).first()
    if relay_number is None:
        return False
    with transaction.atomic():
        leg = (
            ConversationLeg.objects.select_for_update(of=("self",))
            .select_related("conversation", "conversation__virtual_for_a", "conversation__virtual_for_b")
            .filter(real_number=inbound.sender, virtual_number=relay_number, is_open=True)
            .first()
        )
        conversation = leg.conversation if leg else None
        if conversation is not None and conversation.expires_at and conversation.expires_at <= timezone.now():
            conversation_close(conversation=conversation, reason="expired", status=Conversation.Status.EXPIRED)
            conversation = None
        record = {
            "from_number": inbound.sender,
            "to_virtual": relay_number.number,
            "text": inbound.text,
            "media_urls": list(inbound.media_urls),
            "provider": inbound.provider,
            "provider_message_id": inbound.provider_message_id[:100],
        }
        if conversation is None:
            _reply_unmatched(inbound, relay_number, record)
            return True
        from_a = inbound.sender == conversation.participant_a
        direction = RelayMessage.Direction.A_TO_B if from_a else RelayMessage.Direction.B_TO_A
        if _is_stop(inbound.text):
            RelayMessage.objects.create(
                conversation=conversation, direction=direction, outcome=RelayMessage.Outcome.STOPPED, **record
            )
            conversation_close(conversation=conversation, reason="participant sent STOP", stopped_by=inbound.sender)
            return True
        # Relay to the other person, from the number that stands for the sender on their side.
        to, via = (
            (conversation.participant_b, conversation.virtual_for_b)
            if from_a
            else (conversation.participant_a, conversation.virtual_for_a)
        )
        message = _queue(to=to, via=via, body=inbound.text, media_urls=inbound.media_urls)
        RelayMessage.objects.create(
            conversation=conversation,
            direction=direction,
            outcome=RelayMessage.Outcome.RELAYED,
            message=message,
            **record,
        )
    return True


def _reply_unmatched(inbound: InboundSMS, relay_number: RelayNumber, record: dict) -> None:
    message = None
    reply = relay_setting("RELAY_NO_CONVERSATION_REPLY")
    key = f"relay:unmatched-reply:{relay_number.pk}:{inbound.sender}"
    interval = int(relay_setting("RELAY_NO_CONVERSATION_REPLY_INTERVAL"))
    if reply and not _is_stop(inbound.text) and (interval <= 0 or cache.add(key, 1, timeout=interval)):
        message = _queue(to=inbound.sender, via=relay_number, body=reply)
    RelayMessage.objects.create(
        conversation=None,
        direction=RelayMessage.Direction.UNMATCHED,
        outcome=RelayMessage.Outcome.UNMATCHED,
        message=message,
        **record,
    )
    logger.info("relay: message to relay number %s matched no open conversation", relay_number.number)
