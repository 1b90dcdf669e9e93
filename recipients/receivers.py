"""Signal receivers, connected in RecipientsConfig.ready()."""

from __future__ import annotations

from django.dispatch import receiver

from messaging.signals import recipients_refused
from providers.models import ProviderEvent
from providers.signals import inbound_received
from providers.status import InboundSMS
from recipients.models import Recipient
from recipients.services import inbound_handle, recipient_opt_out


@receiver(inbound_received, dispatch_uid="recipients.inbound")
def on_inbound(sender: object, *, inbound: InboundSMS, event: ProviderEvent | None = None, **kwargs: object) -> None:
    inbound_handle(inbound=inbound, event=event)


@receiver(recipients_refused, dispatch_uid="recipients.refused")
def on_refused(sender: object, *, recipient_ids: list[int], evidence: str, **kwargs: object) -> None:
    """The carrier refused a send because the person opted out there: record the opt-out here too."""
    for recipient in Recipient.objects.filter(pk__in=recipient_ids):
        recipient_opt_out(recipient=recipient, channel="provider", evidence=evidence, actor_description="provider")
