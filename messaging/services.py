"""Asking for a message to go out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from django.db import transaction
from django.utils import timezone

from messaging.encoding import analyze
from messaging.models import Message
from messaging.tasks import send_batch
from smsportal.queueing import enqueue

if TYPE_CHECKING:
    from accounts.models import User


def message_enqueue(
    *,
    kind: str,
    to: str,
    sender: str,
    provider: str,
    body: str,
    media_urls: Sequence[str] = (),
    recipient_id: int | None = None,
    created_by: User | None = None,
) -> Message:
    """Create one message that is not a campaign's and send it as soon as the transaction commits.

    The only way single sends, keyword replies, opt-in confirmations and the relay ask
    for an SMS to go out (campaigns create their rows set-based at launch and dispatch
    them in batches). The worker checks consent again when it claims the message, so a
    caller cannot send past an opt-out.
    """
    now = timezone.now()
    message = Message.objects.create(
        kind=kind,
        recipient_id=recipient_id,
        to=to,
        sender=sender,
        provider=provider,
        body=body,
        media_urls=list(media_urls),
        segments=analyze(body).segments or 1,
        due_at=now,
        enqueued_at=now,
        created_by=created_by,
    )
    # A broker that cannot take it does not fail the request: the sweeper queues it again later.
    transaction.on_commit(
        lambda: enqueue(send_batch, [message.pk], fallback="the message sweeper queues it again later")
    )
    return message
