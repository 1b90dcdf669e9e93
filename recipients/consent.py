"""Who may receive what: the one consent rule the send path applies (registered with messaging.hooks)."""

from __future__ import annotations

from messaging.models import Message
from recipients.models import ConsentStatus


def may_receive(*, kind: str, consent: str | None) -> bool:
    """Campaigns need an opt-in. The confirmation of a STOP goes to anyone (it is the last message
    they get). Everything else (single sends, confirmation requests, relay) to anyone who has not
    opted out."""
    if kind == Message.Kind.REPLY:
        return True
    if kind == Message.Kind.CAMPAIGN:
        return consent == ConsentStatus.OPTED_IN
    return consent != ConsentStatus.OPTED_OUT
