"""Signals the send path sends to the apps above it."""

from django.dispatch import Signal

# The provider refused messages because their recipients opted out with the carrier (a STOP
# sent to the provider, not to us). kwargs: recipient_ids (list[int]), evidence (str).
recipients_refused = Signal()
