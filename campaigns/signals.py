"""Signals campaigns send to the apps above them (the events app turns them into webhooks)."""

from django.dispatch import Signal

# A campaign reached ``status`` (completed, paused, ...), sent in the transaction that changed it.
# kwargs: campaign_id (int), status (str), reason (str: the pause reason, or "").
campaign_status_changed = Signal()
