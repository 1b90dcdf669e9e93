"""Single (transactional) sends: one SMS or MMS to one number, outside any campaign, by a person or the API."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from accounts.models import AuthorizedSender, User
from messaging.compose import compose_body, validate_media_urls
from messaging.encoding import MAX_BODY_CHARS
from messaging.models import Message
from messaging.services import message_enqueue
from recipients.models import ConsentStatus, Recipient
from recipients.services import confirmation_check, recipient_request_confirmation
from smsportal.phone import InvalidNumber, normalize

logger = logging.getLogger(__name__)


def _sender_grant(*, user: User, sender_number: str | None, errors: dict[str, list[str]]) -> AuthorizedSender | None:
    grants = list(user.sender_grants.filter(is_active=True).order_by("number"))
    if sender_number:
        try:
            number = normalize(sender_number)
        except InvalidNumber as exc:
            errors.setdefault("sender", []).append(f"{sender_number!r} is {exc}.")
            return None
        for grant in grants:
            if grant.number == number:
                return grant
        errors.setdefault("sender", []).append(f"You are not authorized to send from {number}.")
        return None
    numbers = {g.number for g in grants}
    if len(numbers) == 1:
        return grants[0]
    if not numbers:
        errors.setdefault("sender", []).append("You are not authorized to send from any number.")
    else:
        errors.setdefault("sender", []).append("You are authorized for several numbers; say which one to send from.")
    return None


def confirmation_request_send(*, user: User, recipient: Recipient, sender_number: str | None = None) -> Message:
    """The double opt-in request from one of ``user``'s numbers (the API's; the web form picks a grant).

    Refused first by consent (ConfirmationRefused: opted out, or already opted in), then by sender.
    """
    confirmation_check(recipient=recipient)
    errors: dict[str, list[str]] = {}
    grant = _sender_grant(user=user, sender_number=sender_number, errors=errors)
    if grant is None:
        raise ValidationError(errors)
    return recipient_request_confirmation(
        recipient=recipient, sender_number=grant.number, provider=grant.provider, user=user
    )


def message_send_single(
    *,
    user: User | AnonymousUser,
    to: str,
    body: str,
    media_urls: Sequence[str] = (),
    sender_number: str | None = None,
) -> Message:
    """Create one message and queue it at once. Raises ValidationError with field messages.

    The recipient is found or created by number with consent left as it is
    (pending for a new number); an opted-out number is refused. The send
    itself happens in a worker, after this transaction commits.
    """
    if not isinstance(user, User) or not user.can_send:
        raise PermissionDenied("Your role may not send messages.")
    errors: dict[str, list[str]] = {}
    phone: str | None
    try:
        phone = normalize(to)
    except InvalidNumber as exc:
        errors.setdefault("to", []).append(f"{to!r} is {exc}.")
        phone = None
    text = compose_body(body or "", add_stop_footer=False, smart_encoding=True)
    try:
        media = validate_media_urls(list(media_urls or []))
    except ValueError as exc:
        errors.setdefault("media_urls", []).append(str(exc))
        media = []
    if not text.strip() and not media and "media_urls" not in errors:
        errors.setdefault("body", []).append("Give a message body or at least one media URL.")
    if len(text) > MAX_BODY_CHARS:
        errors.setdefault("body", []).append(
            f"The message is {len(text):,} characters long; the maximum is {MAX_BODY_CHARS:,}."
        )
    grant = _sender_grant(user=user, sender_number=sender_number, errors=errors)
    if errors or phone is None or grant is None:  # no number or no grant: errors says why
        raise ValidationError(errors)

    with transaction.atomic():
        recipient, _ = Recipient.objects.get_or_create(phone=phone)
        if recipient.consent_status == ConsentStatus.OPTED_OUT:
            raise ValidationError({"to": ["This number has opted out; it cannot be sent messages."]})
        message = message_enqueue(
            kind=Message.Kind.SINGLE,
            recipient_id=recipient.pk,
            to=phone,
            sender=grant.number,
            provider=grant.provider,
            body=text,
            media_urls=media,
            created_by=user,
        )
    logger.info("single message %s queued by %s", message.pk, user.username)
    return message
