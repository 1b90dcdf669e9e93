"""Signal receivers, connected in RecipientsConfig.ready()."""

from __future__ import annotations

from django.dispatch import receiver

from providers.signals import inbound_received


@receiver(inbound_received, dispatch_uid="recipients.inbound")
def on_inbound(sender, *, inbound, event=None, **kwargs) -> None:
    from recipients.services import inbound_handle

    inbound_handle(inbound=inbound, event=event)
