"""Signals campaigns send to the apps above them (the events app turns them into webhooks)."""

from django.dispatch import Signal

# A campaign reached ``status`` (completed, paused, ...), sent in the transaction that changed it.
# kwargs: campaign_id (int), status (str), reason (str: the pause reason, or "").
campaign_status_changed = Signal()

# A tracked short link was followed (campaigns.shortlinks.record_click), sent in the click's transaction.
# kwargs: campaign_id (int), recipient_id (int | None: erased), target_url (str), first (bool: the link's
# first click), clicked_at (datetime), user_agent_category (str: mobile, desktop, bot or unknown).
link_clicked = Signal()
# Asked before a click is recorded: a receiver answers True when it will record something of it on
# link_clicked (then the click runs in a transaction with that); nobody wanting it saves two round trips.
link_click_wanted = Signal()
