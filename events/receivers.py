"""The other apps' signals, turned into events (each in the transaction of its change)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models.signals import post_save
from django.dispatch import receiver

from campaigns.signals import campaign_status_changed, link_click_wanted, link_clicked
from events.models import EventType
from events.services import (
    consent_events_for_changes,
    event_publish,
    event_timestamp,
    events_wanted,
    link_clicked_publish,
    message_events_for_move,
)
from messaging.signals import messages_moved
from recipients.models import ConsentStatus, ImportJob, InboundMessage
from recipients.signals import consent_changed, consents_changed, import_finished


@receiver(messages_moved, dispatch_uid="events.messages_moved")
def on_messages_moved(sender: object, rows: list[tuple[int, int | None, str]], to: str, **kwargs: Any) -> None:
    message_events_for_move(rows=rows, to=to)


@receiver(post_save, sender=InboundMessage, dispatch_uid="events.inbound")
def on_inbound(sender: object, instance: InboundMessage, created: bool, **kwargs: Any) -> None:
    if not created:
        return
    event_publish(
        event_type=EventType.MESSAGE_RECEIVED,
        data={
            "id": instance.pk,
            "from": instance.sender,
            "to": instance.to,
            "text": instance.text,
            "media_urls": list(instance.media_urls or []),
            "kind": instance.kind,  # opt_out, opt_in, help or message
            "recipient_id": instance.recipient_id,
            "provider": instance.provider,
        },
    )


@receiver(consent_changed, dispatch_uid="events.consent")
def on_consent(
    sender: object, recipient_id: int, phone: str, from_status: str, to_status: str, channel: str, **kwargs: Any
) -> None:
    types = {
        ConsentStatus.OPTED_OUT: EventType.RECIPIENT_OPTED_OUT,
        ConsentStatus.OPTED_IN: EventType.RECIPIENT_OPTED_IN,
    }
    event_type = types.get(ConsentStatus(to_status))
    if event_type is not None:
        event_publish(
            event_type=event_type,
            data={"id": recipient_id, "phone": phone, "from_status": from_status, "channel": channel},
        )


@receiver(consents_changed, dispatch_uid="events.consents")
def on_consents(sender: object, changes: list[tuple[int, str, str, str]], channel: str, **kwargs: Any) -> None:
    consent_events_for_changes(changes=changes, channel=channel)


@receiver(campaign_status_changed, dispatch_uid="events.campaign")
def on_campaign(sender: object, campaign_id: int, status: str, reason: str = "", **kwargs: Any) -> None:
    types = {"completed": EventType.CAMPAIGN_COMPLETED, "paused": EventType.CAMPAIGN_PAUSED}
    event_type = types.get(str(status))
    if event_type is not None:
        event_publish(event_type=event_type, data={"id": campaign_id, "status": str(status), "reason": reason})


@receiver(link_click_wanted, dispatch_uid="events.link_click_wanted")
def on_link_click_wanted(sender: object, **kwargs: Any) -> bool:
    return events_wanted(event_type=EventType.LINK_CLICKED)


@receiver(link_clicked, dispatch_uid="events.link_clicked")
def on_link_clicked(
    sender: object,
    campaign_id: int,
    recipient_id: int | None,
    target_url: str,
    first: bool,
    clicked_at: datetime,
    user_agent_category: str,
    **kwargs: Any,
) -> None:
    link_clicked_publish(
        data={
            "campaign_id": campaign_id,
            "recipient_id": recipient_id,
            "url": target_url,
            "first_click": first,
            "clicked_at": event_timestamp(clicked_at),
            "user_agent_category": user_agent_category,
        },
        now=clicked_at,
    )


@receiver(import_finished, dispatch_uid="events.import")
def on_import(sender: object, job: ImportJob, **kwargs: Any) -> None:
    event_publish(
        event_type=EventType.IMPORT_FINISHED,
        data={
            "id": job.pk,
            "list_id": job.recipient_list_id,
            "status": job.status,
            "error": job.error,
            "file": job.original_name,
            "rows": job.processed_rows,
            "created": job.created_count,
            "updated": job.updated_count,
            "duplicates": job.duplicate_count,
            "rejected": job.rejected_count,
            "finished_at": job.finished_at.isoformat() if job.finished_at else None,
        },
    )
