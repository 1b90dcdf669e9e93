"""Signals through which providers hand normalized events to the apps.

Providers import nothing from the apps; the apps connect receivers in their
``AppConfig.ready``.
"""

from django.dispatch import Signal

# sender=ProviderEvent; kwargs: events=list[StatusEvent]. A receiver returns the ``event_id``s it could
# not apply yet (the message is busy, or its provider id is not known yet): the drain keeps them for later.
status_received = Signal()
# sender=webhook class; kwargs: inbound=InboundSMS
inbound_received = Signal()

# Delivery reports were stored (after commit); ``providers.tasks`` queues the drain that applies them.
status_events_stored = Signal()

# sender=status webhook class; kwargs: provider, members=list[str] (our message ids that shared one request),
# destination=str (E.164). A receiver returns the member whose destination it is, or None.
group_member_wanted = Signal()
