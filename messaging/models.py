"""Outbound messages: every SMS or MMS the portal sends, and its status lifecycle."""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.indexes import BrinIndex
from django.db import models
from django.db.models import Func, Q
from django.db.models.functions import Now
from django.utils import timezone

from messaging import lookups  # noqa: F401  (registers pk__any, used by the send path)


class UTCMonthStart(Func):
    """First day of the UTC month of a timestamp expression: the database's side of ``partitions.month_start``."""

    template = "(date_trunc('month', %(expressions)s AT TIME ZONE 'UTC'))::date"
    output_field = models.DateField()


class MessageStatus(models.TextChoices):
    """Outbound message lifecycle. Status only moves forward, except the three retries.

    ::

        pending --claim--> claimed --request starts--> sending --accepted--> queued --> sent --> delivered
                                                                                             \\-> undelivered | failed
        sending --transient error--> pending (due_at = backoff; attempts + 1)   [retry]
        sending --permanent error--> failed
        sending --answer lost (read timeout, dropped) or worker died--> unknown
        unknown --provider callback--> queued/sent/delivered/...  (the report settles it, any time)
        unknown --no report for its provider's window (sweeper.silence_limit)--> pending (sent again once) | failed (no attempt left)
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
    SENT = "sent", "Passed to carrier"
    DELIVERED = "delivered", "Delivered"
    UNDELIVERED = "undelivered", "Undelivered"
    FAILED = "failed", "Send failed"
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
    """One outbound SMS/MMS, whoever asked for it: a campaign, a person (single send), a keyword reply,
    an opt-in confirmation or the relay. ``message_enqueue`` is the only way one is created.

    ``(campaign, recipient)`` is unique in the database: the row is the
    idempotency key, so no retry, race or redelivered task makes a second one.

    The table is partitioned by ``month`` (messaging/partitions.py). A campaign's rows all carry
    the campaign's month, so the database's ``UNIQUE(campaign, recipient, month)`` (a partitioned
    table's unique keys must hold the partition key) is exactly ``UNIQUE(campaign, recipient)``.
    The database's primary key is ``(id, month)``; ``id`` alone is unique by its sequence and is
    what Django and every query use.
    """

    class Kind(models.TextChoices):
        CAMPAIGN = "campaign", "Campaign"
        SINGLE = "single", "Single send"
        REPLY = "reply", "Keyword reply"
        CONFIRMATION = "confirmation", "Opt-in confirmation"
        RELAY = "relay", "Relay"

    # No single-column indexes on the campaign and the recipient: unique_campaign_recipient and
    # message_recipient_sender lead with them, and every status move writes each index again.
    campaign = models.ForeignKey(
        "campaigns.Campaign",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="messages",
        db_index=False,
    )
    recipient = models.ForeignKey(
        "recipients.Recipient",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="messages",
        db_index=False,
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
    cost_micros = models.BigIntegerField(null=True, blank=True, help_text="What the provider charged, millionths")
    cost_currency = models.CharField(max_length=3, blank=True, default="", db_default="")  # raw INSERTs omit it
    attempts = models.PositiveSmallIntegerField(default=0)
    due_at = models.DateTimeField(default=timezone.now, help_text="Not before this time")
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    enqueued_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True, help_text="Accepted by the provider")
    finished_at = models.DateTimeField(null=True, blank=True)
    # The partition key. Campaign launch sets it to the campaign's month; other rows take the
    # database's current UTC month. Never changes after insert.
    month = models.DateField(db_default=UTCMonthStart(Now()), editable=False)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "recipient", "month"], name="unique_campaign_recipient"),
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
            # Retention finds old rows by age: BRIN suits an append-only, time-ordered table (a few pages).
            BrinIndex(fields=["created_at"], name="message_created_brin"),
        ]

    def __str__(self) -> str:
        return f"Message {self.pk} to {self.to} ({self.status})"


class SegmentRate(models.Model):
    """What a provider charges to one country: per SMS segment, and per MMS. Staff edit it in admin.

    Used only for estimates before launch and the budget guard; actual costs
    come from the providers' delivery reports. ``country`` ``*`` is the rate for
    every country without its own row.
    """

    provider = models.CharField(max_length=20)
    country = models.CharField(max_length=2, help_text="ISO 3166 code such as US, or * for every other country")
    sms_segment_price = models.DecimalField(max_digits=12, decimal_places=6, help_text="Per SMS segment")
    mms_price = models.DecimalField(
        max_digits=12, decimal_places=6, null=True, blank=True, help_text="Per MMS (blank: as one SMS segment)"
    )
    currency = models.CharField(max_length=3, default="USD")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["provider", "country"]
        constraints = [models.UniqueConstraint(fields=["provider", "country"], name="unique_segment_rate")]

    def __str__(self) -> str:
        return f"{self.provider} {self.country}: {self.sms_segment_price} {self.currency}/segment"
