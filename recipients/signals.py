"""Signals recipients sends to the apps above it (the events app turns them into webhooks)."""

from django.dispatch import Signal

# One person's consent changed, sent in the transaction that changed it.
# kwargs: recipient_id (int), phone (str), from_status, to_status, channel (str).
consent_changed = Signal()

# Many people's consent changed at once (an import chunk, a bulk upsert), sent once per upsert in
# its transaction, with only the rows whose status actually moved (new numbers with a stated or
# suppressed status included). kwargs: changes (list of ConsentChange), channel (str).
consents_changed = Signal()

# A CSV import finished (completed or failed), after its row report is saved.
# kwargs: job (recipients.models.ImportJob).
import_finished = Signal()
