"""Campaigns: one body sent to the opted-in members of some lists, with its lifecycle.

The messages a campaign fans out to are ``messaging.Message`` rows (``campaign.messages``).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Campaign(models.Model):
    """One body sent to the opted-in members of some lists.

    Lifecycle::

        draft --launch--> sending --(every message final)--> completed
        draft --launch with send_at in the future--> scheduled --(beat, when due)--> sending
        sending <--pause / resume--> paused   (auto-pause too, with ``pause_reason``)
        paused (auto-paused) --(a probe send succeeds: beat)--> sending   (``auto_resume`` event)
        draft | scheduled | sending | paused --cancel--> cancelled

    A sending campaign gets one Message per opted-in recipient of the lists (a person in
    two lists gets one), made a few batches ahead of the senders (campaigns/dispatch.py):
    ``materialized_through`` is the cursor, ``recipient_total`` the rows made so far, and
    ``materialized`` turns true once every recipient has a row (``expected_total`` is what
    progress is measured against meanwhile). Counters live in
    CampaignCounter, never COUNT(*).
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
    add_stop_footer = models.BooleanField(default=True)
    smart_encoding = models.BooleanField(default=True)
    track_links = models.BooleanField(default=False, help_text="Replace each URL with a per-recipient short link")
    senders = models.ManyToManyField("accounts.AuthorizedSender", related_name="campaigns", blank=True)
    lists = models.ManyToManyField("recipients.RecipientList", related_name="campaigns", blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="campaigns")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT, db_index=True)
    pause_reason = models.CharField(max_length=255, blank=True)
    # Paused by the system (failing provider), not by a person: beat probes it and resumes it.
    auto_paused = models.BooleanField(default=False)

    send_at = models.DateTimeField(null=True, blank=True, help_text="Start sending at this time")
    # The hours in which messages may go out, in each recipient's local time (both or neither).
    send_window_start = models.TimeField(null=True, blank=True, help_text="Recipients' local time, e.g. 08:00")
    send_window_end = models.TimeField(null=True, blank=True, help_text="Recipients' local time, e.g. 21:00")
    valid_until = models.DateTimeField(null=True, blank=True, help_text="Unsent messages expire after this")

    max_spend_micros = models.BigIntegerField(
        null=True, blank=True, help_text="Budget in millionths of SMS_COST_CURRENCY: pauses itself before going over"
    )
    estimated_cost_micros = models.BigIntegerField(null=True, blank=True, help_text="Estimate at launch")

    recipient_total = models.PositiveIntegerField(default=0, help_text="Messages created at launch")
    # Rows are made as it sends: until every one exists, progress is shown against this count.
    audience_total = models.PositiveIntegerField(
        null=True, blank=True, help_text="Opted-in recipients counted at launch"
    )
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
    def expected_total(self) -> int:
        """How many messages it sends: the rows made, or while rows are still being made, the audience counted at launch."""
        if self.materialized:
            return self.recipient_total
        return max(self.recipient_total, self.audience_total or 0)

    @property
    def is_active(self) -> bool:
        return self.status in {self.Status.SENDING, self.Status.PAUSED, self.Status.SCHEDULED}


class CampaignCounter(models.Model):
    """Append-only counter deltas per campaign and status bucket.

    Every status change adds -1/+1 rows; a beat task squashes them into one
    row per bucket (and minute), so reads sum a handful of rows instead of counting messages.
    Click rows (``clicks``, ``clickers``) carry the ``minute`` of the click, which the campaign
    page's click chart groups by; every other bucket leaves it empty.
    """

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="counters")
    bucket = models.CharField(max_length=12)
    count = models.BigIntegerField()
    minute = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["campaign", "bucket"], name="counter_campaign_bucket")]

    def __str__(self) -> str:
        return f"{self.campaign_id} {self.bucket} {self.count:+d}"


class CampaignEvent(models.Model):
    """Things a person wants to see in a campaign's history: auto-pause, auto-resume, failover, expiry."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=30)
    detail = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.kind}: {self.detail}"


class ShortLink(models.Model):
    """A tracked short link: one per (campaign, recipient, URL in the body), made when the message is prepared.

    Lifecycle: created unclicked -> each visit adds to ``clicks`` (the first also sets
    ``first_clicked_at``) -> past ``expires_at`` the redirect shows a friendly page instead.
    It does not point at the message, so purging messages leaves links working; erasing the
    recipient leaves the link (recipient null). The code is the primary key: one index lookup.
    """

    code = models.CharField(max_length=16, primary_key=True)
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="short_links")
    recipient = models.ForeignKey(
        "recipients.Recipient", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    target_url = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    clicks = models.PositiveIntegerField(default=0)
    first_clicked_at = models.DateTimeField(null=True, blank=True)
    last_clicked_at = models.DateTimeField(null=True, blank=True)
    user_agent_category = models.CharField(max_length=10, blank=True, help_text="Of the last click; never the IP")

    class Meta:
        constraints = [
            # NULLS NOT DISTINCT: a recipient-less link (recipient erased) is still one per campaign and URL.
            models.UniqueConstraint(
                fields=["campaign", "recipient", "target_url"], name="unique_short_link", nulls_distinct=False
            ),
        ]

    def __str__(self) -> str:
        return f"{self.code} -> {self.target_url}"
