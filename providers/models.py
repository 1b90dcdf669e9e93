"""Raw provider events, stored before anything acts on them."""

from __future__ import annotations

from django.db import models


class ProviderEvent(models.Model):
    """One delivery report or inbound message exactly as the provider sent it.

    Lifecycle: stored unprocessed (``processed_at`` is null) by the webhook or
    the sandbox -> read in batches by ``providers.tasks.apply_status_events``,
    which sets ``processed_at`` once the report was applied, or ignored because
    it is not bound to the message it names (reference, provider and provider
    id must agree). A report the apps cannot apply yet (the send path holds the
    message, or has not stored the provider's id) stays unprocessed for a later
    drain. Inbound messages are applied at once by the webhook request.
    Applying twice is harmless: statuses only move forward. The sweeper hands a
    read report of an ``unknown`` message back to the drain once at most
    (``handed_back_at``, ``providers.events.reports_heard``).
    """

    class Kind(models.TextChoices):
        STATUS = "status", "Delivery status"
        INBOUND = "inbound", "Inbound message"

    provider = models.CharField(max_length=20)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    message_ref = models.CharField(max_length=64, blank=True, help_text="Our message id, from the callback URL")
    provider_message_id = models.CharField(max_length=100, blank=True)
    status = models.CharField(max_length=20, blank=True, help_text="Normalized status")
    error_code = models.CharField(max_length=20, blank=True)
    error_text = models.CharField(max_length=255, blank=True)
    occurred_at = models.DateTimeField(null=True, blank=True)
    cost_micros = models.BigIntegerField(null=True, blank=True, help_text="Charge for the message, millionths")
    cost_currency = models.CharField(max_length=3, blank=True, default="", db_default="")  # raw INSERTs omit it
    payload = models.JSONField(default=dict)
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    handed_back_at = models.DateTimeField(
        null=True, blank=True, help_text="When the sweeper gave this read report to the drain again (once at most)"
    )

    class Meta:
        indexes = [
            models.Index(
                fields=["id"],
                name="providerevent_unprocessed",
                condition=models.Q(processed_at__isnull=True),
            ),
            models.Index(fields=["message_ref"], name="providerevent_message_ref"),
        ]

    def __str__(self) -> str:
        return f"{self.provider} {self.kind} {self.status or ''} {self.message_ref}".strip()
