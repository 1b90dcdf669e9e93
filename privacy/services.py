"""Subject access and erasure: everything held about one phone number, in one place.

It sits above every app that holds a number (recipients, messaging, providers, relay, the
audit log), so each new table holding numbers must be added here. Both are audited; the
erasure's audit entry names only the number's suppression hash.

What erasure keeps: the opt-out, as a suppression holding only a hash of the number (so a
later import or text cannot opt the number back in by accident); campaign counters and
costs (they hold no number); the audit log (evidence of who did what; entries name
recipients by id, not by number).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import AuditEvent
from accounts.services import audit_record
from campaigns.models import ShortLink
from messaging.models import NOT_FINAL_STATUSES, Message, MessageStatus
from messaging.transitions import move
from providers.models import ProviderEvent
from recipients.models import (
    ConsentEvent,
    ConsentStatus,
    ImportRowError,
    InboundMessage,
    Recipient,
    Suppression,
    suppression_key,
)
from relay.models import ConversationLeg, RelayMessage
from smsportal.phone import normalize

FORMAT_VERSION = 1


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _rows(queryset: Iterable[Any]) -> list[dict[str, Any]]:
    return [{k: _iso(v) if isinstance(v, datetime) else v for k, v in row.items()} for row in queryset]


def subject_export(*, phone: str, actor_description: str) -> dict[str, Any]:
    """Everything held about ``phone`` (any common notation; normalized to E.164), as JSON-ready data."""
    phone = normalize(phone)
    recipient = Recipient.objects.filter(phone=phone).first()
    messages = Message.objects.filter(to=phone).order_by("id")
    inbound = InboundMessage.objects.filter(sender=phone).order_by("id")
    data: dict[str, Any] = {
        "format": FORMAT_VERSION,
        "phone": phone,
        "exported_at": timezone.now().isoformat(),
        "recipient": None,
        "suppressed": Suppression.objects.of(phone).exists(),
        "outbound_messages": _rows(
            messages.values(
                "id",
                "kind",
                "campaign_id",
                "sender",
                "body",
                "media_urls",
                "status",
                "segments",
                "error_code",
                "error_text",
                "cost_micros",
                "cost_currency",
                "created_at",
                "sent_at",
                "finished_at",
            )
        ),
        "inbound_messages": _rows(inbound.values("id", "to", "text", "media_urls", "kind", "received_at")),
        "provider_events": _rows(
            _provider_events(messages, inbound).values("id", "provider", "kind", "status", "payload", "received_at")
        ),
        "relay_legs": _rows(
            ConversationLeg.objects.filter(real_number=phone).values(
                "conversation_id", "virtual_number__number", "is_open"
            )
        ),
        "relay_messages": _rows(
            RelayMessage.objects.filter(from_number=phone).values(
                "id", "conversation_id", "to_virtual", "text", "received_at"
            )
        ),
        "import_rejected_rows": _rows(
            ImportRowError.objects.filter(phone=phone).values("job_id", "row_number", "reason", "raw")
        ),
        "audit_log": [],
    }
    if recipient is not None:
        data["recipient"] = {
            **_rows(
                [
                    {
                        "id": recipient.pk,
                        "first_name": recipient.first_name,
                        "last_name": recipient.last_name,
                        "attributes": recipient.attributes,
                        "consent_status": recipient.consent_status,
                        "opted_in_at": recipient.opted_in_at,
                        "opted_out_at": recipient.opted_out_at,
                        "confirmation_sent_at": recipient.confirmation_sent_at,
                        "created_at": recipient.created_at,
                    }
                ]
            )[0],
            "lists": list(recipient.lists.order_by("name").values_list("name", flat=True)),
            "consent_events": _rows(
                ConsentEvent.objects.filter(recipient=recipient)
                .order_by("created_at", "id")
                .values("from_status", "to_status", "channel", "actor_description", "evidence", "created_at")
            ),
        }
        data["tracked_links"] = _rows(
            ShortLink.objects.filter(recipient=recipient).values(
                "code", "campaign_id", "target_url", "clicks", "first_clicked_at", "last_clicked_at"
            )
        )
        data["audit_log"] = _rows(
            AuditEvent.objects.filter(target_type="recipients.recipient", target_id=str(recipient.pk))
            .order_by("created_at")
            .values("action", "actor_description", "detail", "created_at")
        )
    audit_record(
        actor=actor_description,
        action="subject.export",
        target=recipient,
        detail=f"subject access export for suppression key {suppression_key(phone)[:16]}",
    )
    return data


def _provider_events(messages: Any, inbound: Any) -> Any:
    refs = [str(pk) for pk in messages.values_list("pk", flat=True)]
    inbound_ids = [i for i in inbound.values_list("provider_message_id", flat=True) if i]
    return ProviderEvent.objects.filter(
        Q(kind=ProviderEvent.Kind.STATUS, message_ref__in=refs)
        | Q(kind=ProviderEvent.Kind.INBOUND, provider_message_id__in=inbound_ids)
    ).order_by("id")


def subject_erase(*, phone: str, actor_description: str) -> dict[str, int]:
    """Remove everything held about ``phone`` except its opt-out, kept as a hash-only suppression.

    Messages still waiting to be sent are cancelled first (campaign counters stay right), then deleted.
    Returns counts per kind.
    """
    phone = normalize(phone)
    key = suppression_key(phone)
    counts: dict[str, int] = {}
    with transaction.atomic():
        recipient = Recipient.objects.select_for_update().filter(phone=phone).first()
        if recipient is not None and recipient.consent_status == ConsentStatus.OPTED_OUT:
            last = (
                ConsentEvent.objects.filter(recipient=recipient, to_status=ConsentStatus.OPTED_OUT)
                .order_by("-created_at", "-id")
                .first()
            )
            when = last.created_at if last else recipient.opted_out_at
            how = last.get_channel_display() if last else "opt-out"
            Suppression.objects.update_or_create(
                phone_hash=key,
                defaults={
                    "reason": "opted out, then erased on request",
                    # The evidence text may quote the number: only its kind and date are kept.
                    "evidence": f"{how} opt-out on {when:%Y-%m-%d %H:%M} UTC (details erased on request)"
                    if when
                    else f"{how} opt-out (details erased on request)",
                },
            )
        counts["suppression_kept"] = int(Suppression.objects.filter(phone_hash=key).exists())
        messages = Message.objects.filter(to=phone)
        waiting = list(messages.filter(status__in=list(NOT_FINAL_STATUSES)).values_list("pk", flat=True))
        move(ids=waiting, to=MessageStatus.CANCELLED, allowed_from=list(NOT_FINAL_STATUSES), finished_at=timezone.now())
        inbound = InboundMessage.objects.filter(sender=phone)
        counts["provider_events"] = _provider_events(messages, inbound).delete()[0]
        counts["outbound_messages"] = messages.delete()[0]
        counts["inbound_messages"] = inbound.delete()[0]
        counts["relay_messages"] = RelayMessage.objects.filter(from_number=phone).delete()[0]
        legs = list(ConversationLeg.objects.filter(real_number=phone).values_list("pk", flat=True))
        for pk in legs:  # the conversation's other side keeps its transcript; this side loses its number
            ConversationLeg.objects.filter(pk=pk).update(real_number=f"erased-{pk}"[:16], is_open=False)
        counts["relay_legs"] = len(legs)
        counts["import_rejected_rows"] = ImportRowError.objects.filter(phone=phone).delete()[0]
        counts["recipient"] = 0
        which = ""
        if recipient is not None:
            which = f" (recipient {recipient.pk})"
            recipient.delete()  # memberships and consent events go with it; the opt-out lives on above
            counts["recipient"] = 1
        audit_record(
            actor=actor_description,
            action="subject.erase",
            detail=f"erased suppression key {key[:16]}{which}: " + ", ".join(f"{k} {v}" for k, v in counts.items()),
        )
    return counts
