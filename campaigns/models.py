"""Campaigns and the messages they fan out to, with their status lifecycles."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class Campaign(models.Model):
    """One body sent to the opted-in members of some lists.

    Lifecycle::

        draft --launch--> sending --(every message final)--> completed
        draft --launch with send_at in the future--> scheduled --(beat, when due)--> sending
        sending <--pause / resume--> paused   (auto-pause too, with ``pause_reason``)
        draft | scheduled | sending | paused --cancel--> cancelled

    Launch creates one Message per opted-in recipient of the lists (a person in
    two lists gets one). Counters live in CampaignCounter, never COUNT(*).
    """

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        SCHEDULED = "scheduled", "Scheduled"
        SENDING = "sending", "Sending"
        PAUSED = "paused", "Paused"
        COMPLETED = "completed", "Completed"
        CANCELLED = "cancelled", "Cancelled"

    name = models.CharField(max_length=200)
    body = models.TextField(help_text='Template: {{ first_name }}, {{ city|default:"there" }}')
    media_urls = models.JSONField(default=list, blank=True)
    add_stop_footer = models.BooleanField(default=False)
    smart_encoding = models.BooleanField(default=True)
    senders = models.ManyToManyField("accounts.AuthorizedSender", related_name="campaigns", blank=True)
    lists = models.ManyToManyField("recipients.RecipientList", related_name="campaigns", blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="campaigns")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT, db_index=True)
    pause_reason = models.CharField(max_length=255, blank=True)

    send_at = models.DateTimeField(null=True, blank=True, help_text="Start sending at this time")
    quiet_hours_start = models.TimeField(null=True, blank=True, help_text="Recipients' local time, e.g. 08:00")
    quiet_hours_end = models.TimeField(null=True, blank=True, help_text="Recipients' local time, e.g. 21:00")
    valid_until = models.DateTimeField(null=True, blank=True, help_text="Unsent messages expire after this")

    recipient_total = models.PositiveIntegerField(default=0, help_text="Messages created at launch")
    materialized_through = models.BigIntegerField(default=0, help_text="Launch cursor: last recipient id done")
    materialized = models.BooleanField(default=False, help_text="Every message row exists")

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    launched_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_active(self) -> bool:
        return self.status in {self.Status.SENDING, self.Status.PAUSED, self.Status.SCHEDULED}


class MessageStatus(models.TextChoices):
    """Outbound message lifecycle. Status only moves forward, except the two retries.

    ::

        pending --claim--> claimed --request starts--> sending --accepted--> queued --> sent --> delivered
                                                                                             \\-> undelivered | failed
        sending --transient error--> pending (due_at = backoff; attempts + 1)   [retry]
        sending --permanent error--> failed
        sending --worker died--> unknown --provider callback--> queued/sent/delivered/... (never resent)
        claimed --worker died--> pending (the request never started)
        pending|claimed --opted out at claim--> skipped;  --campaign cancelled--> cancelled
        pending --valid_until passed--> expired
        failed (transient reason) --retry failed--> pending
    """

    PENDING = "pending", "Waiting"
    CLAIMED = "claimed", "Claimed"
    SENDING = "sending", "Sending"
    UNKNOWN = "unknown", "Outcome unknown"
    QUEUED = "queued", "Queued at provider"
    SENT = "sent", "Sent"
    DELIVERED = "delivered", "Delivered"
    UNDELIVERED = "undelivered", "Undelivered"
    FAILED = "failed", "Failed"
    SKIPPED = "skipped", "Skipped (no consent)"
    CANCELLED = "cancelled", "Cancelled"
    EXPIRED = "expired", "Expired"


FINAL_STATUSES = frozenset(
    {
        MessageStatus.DELIVERED,
        MessageStatus.UNDELIVERED,
        MessageStatus.FAILED,
        MessageStatus.SKIPPED,
        MessageStatus.CANCELLED,
        MessageStatus.EXPIRED,
    }
)
NOT_FINAL_STATUSES = frozenset(set(MessageStatus) - FINAL_STATUSES)


class Message(models.Model):
    """One outbound SMS/MMS: a campaign's message to one recipient, or a single send.

    ``(campaign, recipient)`` is unique in the database: the row is the
    idempotency key, so no retry, race or redelivered task makes a second one.
    """

    class Kind(models.TextChoices):
        CAMPAIGN = "campaign", "Campaign"
        SINGLE = "single", "Single send"
        REPLY = "reply", "Keyword reply"
        CONFIRMATION = "confirmation", "Opt-in confirmation"
        RELAY = "relay", "Relay"

    campaign = models.ForeignKey(Campaign, null=True, blank=True, on_delete=models.CASCADE, related_name="messages")
    recipient = models.ForeignKey(
        "recipients.Recipient",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="messages",
    )
    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.CAMPAIGN)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    to = models.CharField(max_length=16)
    sender = models.CharField(max_length=16, blank=True, help_text="Chosen when claimed")
    provider = models.CharField(max_length=20, blank=True)
    body = models.TextField(blank=True, help_text="Rendered when claimed")
    media_urls = models.JSONField(default=list, blank=True)
    segments = models.PositiveSmallIntegerField(default=0)
    status = models.CharField(max_length=12, choices=MessageStatus.choices, default=MessageStatus.PENDING)
    provider_message_id = models.CharField(max_length=100, blank=True)
    error_code = models.CharField(max_length=20, blank=True)
    error_text = models.CharField(max_length=255, blank=True)
    error_permanent = models.BooleanField(null=True, blank=True, help_text="Kind of the last error")
    attempts = models.PositiveSmallIntegerField(default=0)
    due_at = models.DateTimeField(default=timezone.now, help_text="Not before this time")
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    enqueued_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True, help_text="Accepted by the provider")
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "recipient"], name="unique_campaign_recipient"),
        ]
        indexes = [
            models.Index(fields=["campaign", "status"], name="message_campaign_status"),
            models.Index(
                fields=["status", "due_at"],
                name="message_open",
                condition=Q(status__in=["pending", "claimed", "sending", "unknown"]),
            ),
            models.Index(
                fields=["campaign", "due_at", "id"],
                name="message_undispatched",
                condition=Q(status="pending", enqueued_at__isnull=True),
            ),
            models.Index(
                fields=["campaign"],
                name="message_dispatched",
                condition=Q(status="pending", enqueued_at__isnull=False),
            ),
            models.Index(fields=["provider_message_id"], name="message_provider_id"),
            models.Index(fields=["recipient", "sender"], name="message_recipient_sender"),
        ]

    def __str__(self) -> str:
        return f"Message {self.pk} to {self.to} ({self.status})"


class CampaignCounter(models.Model):
    """Append-only counter deltas per campaign and status bucket.

    Every status change adds -1/+1 rows; a beat task squashes them into one
    row per bucket, so reads sum a handful of rows instead of counting messages.
    """

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="counters")
    bucket = models.CharField(max_length=12)
    count = models.BigIntegerField()

    class Meta:
        indexes = [models.Index(fields=["campaign", "bucket"], name="counter_campaign_bucket")]

    def __str__(self) -> str:
        return f"{self.campaign_id} {self.bucket} {self.count:+d}"


class CampaignEvent(models.Model):
    """Things a person wants to see in a campaign's history: auto-pause, failover, expiry."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=30)
    detail = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.kind}: {self.detail}"
