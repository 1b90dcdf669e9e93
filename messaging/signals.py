"""Signals the send path sends to the apps above it."""

from django.dispatch import Signal

# The provider refused messages because their recipients opted out with the carrier (a STOP
# sent to the provider, not to us). kwargs: recipient_ids (list[int]), evidence (str).
recipients_refused = Signal()

# Messages changed status (messaging.transitions.move), sent inside the transaction that moved
# them, once per batch. kwargs: rows (list of (id, campaign_id, old_status)), to (the new status).
# The events app turns these into message.sent/.delivered/.failed webhooks in one statement.
messages_moved = Signal()
