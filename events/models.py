"""Outbound event webhooks: endpoints an admin registers, the outbox of events for each, and every attempt.

Lifecycle of an endpoint::

    active --(its retry schedule, about 24 h, exhausted)--> disabled automatically (reason, time)
    active <--admin enables / disables--> disabled

Lifecycle of an event (one OutboxEvent row per event and endpoint)::

    pending --(2xx from the endpoint)--> delivered --(resend)--> pending

A pending event is never dropped: while its endpoint fails, it waits (the endpoint's
``retry_at``) and every later event of that endpoint waits behind it, so each endpoint gets
its events in order (a message's ``delivered`` never before its ``sent``).
"""

from __future__ import annotations

import base64
import secrets

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models


class EventType(models.TextChoices):
    MESSAGE_SENT = "message.sent", "message.sent: the provider accepted a message"
    MESSAGE_DELIVERED = "message.delivered", "message.delivered: the carrier delivered it"
    MESSAGE_FAILED = "message.failed", "message.failed: failed or undelivered, for good"
    MESSAGE_RECEIVED = "message.received", "message.received: someone texted one of our numbers"
    RECIPIENT_OPTED_OUT = "recipient.opted_out", "recipient.opted_out"
    RECIPIENT_OPTED_IN = "recipient.opted_in", "recipient.opted_in"
    CAMPAIGN_COMPLETED = "campaign.completed", "campaign.completed"
    CAMPAIGN_PAUSED = "campaign.paused", "campaign.paused (by a person or automatically)"
    IMPORT_FINISHED = "import.finished", "import.finished: a CSV import completed or failed"
    LINK_CLICKED = "link.clicked", "link.clicked: a recipient followed a tracked short link"


def new_secret() -> str:
    """A Standard Webhooks signing secret: ``whsec_`` and base64 of 24 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


class WebhookEndpoint(models.Model):
    """A URL that receives the events it subscribed to, signed with its own ``secret``."""

    url = models.URLField(max_length=500, help_text="Where events are POSTed (https in production)")
    description = models.CharField(max_length=200, blank=True)
    event_types = ArrayField(
        models.CharField(max_length=40, choices=EventType.choices),
        blank=True,
        default=list,
        help_text="The events it receives; empty means all of them",
    )
    secret = models.CharField(max_length=100, default=new_secret, help_text="Standard Webhooks secret (whsec_…)")
    is_active = models.BooleanField(default=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=255, blank=True)
    failure_count = models.PositiveIntegerField(default=0, help_text="Failed attempts in a row")
    retry_at = models.DateTimeField(null=True, blank=True, help_text="Next attempt after a failure")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.description or self.url

    def receives(self, event_type: str) -> bool:
        return not self.event_types or event_type in self.event_types


class OutboxEvent(models.Model):
    """One event for one endpoint. ``payload`` is the exact JSON body (``type``, ``timestamp``, ``data``)."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="events")
    event_type = models.CharField(max_length=40, choices=EventType.choices)
    payload = models.JSONField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["endpoint", "id"], name="outbox_pending", condition=models.Q(status="pending")),
        ]

    def __str__(self) -> str:
        return f"{self.webhook_id} {self.event_type}"

    @property
    def webhook_id(self) -> str:
        """The ``webhook-id`` header: the same on every attempt, so receivers can drop duplicates."""
        return f"evt_{self.pk}"


class DeliveryAttempt(models.Model):
    """One POST of an event: what the endpoint answered (or why there was no answer)."""

    event = models.ForeignKey(OutboxEvent, on_delete=models.CASCADE, related_name="delivery_attempts")
    attempted_at = models.DateTimeField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    succeeded = models.BooleanField()
    error = models.CharField(max_length=255, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.event_id} {self.status_code or self.error}"
