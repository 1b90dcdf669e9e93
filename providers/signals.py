"""Signals through which providers hand normalized events to the apps.

Providers import nothing from the apps; the apps connect receivers in their
``AppConfig.ready``.
"""

from django.dispatch import Signal

# sender=backend or webhook class; kwargs: event=StatusEvent
status_received = Signal()
# sender=webhook class; kwargs: inbound=InboundSMS
inbound_received = Signal()

# Delivery reports were stored (after commit); ``providers.tasks`` queues the drain that applies them.
status_events_stored = Signal()
