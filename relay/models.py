"""Masked two-way conversations between two real numbers through virtual relay numbers."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from providers import registry as sms_providers
from smsportal.phone import validate_e164


class RelayNumber(models.Model):
    """A provider number reserved for relay. Inactive numbers get no new conversations."""

    number = models.CharField(max_length=16, unique=True, validators=[validate_e164], help_text="E.164")
    provider = models.CharField(max_length=20, choices=sms_providers.choices, default=sms_providers.default_name)
    label = models.CharField(max_length=100, blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["number"]

    def __str__(self) -> str:
        return f"{self.label or self.number} ({self.provider})"


class Conversation(models.Model):
    """Two people texting through virtual numbers; neither sees the other's real number.

    A texts ``virtual_for_a`` (it stands for B) and B texts ``virtual_for_b``
    (it stands for A). Lifecycle::

        open --staff close / participant STOP--> closed
        open --expires_at passed (beat)--> expired

    Closing or expiring closes both legs, which frees the virtual numbers.
    """

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        CLOSED = "closed", "Closed"
        EXPIRED = "expired", "Expired"

    participant_a = models.CharField(max_length=16, validators=[validate_e164])
    participant_b = models.CharField(max_length=16, validators=[validate_e164])
    name_a = models.CharField(max_length=50, blank=True, help_text="How B's intro names A")
    name_b = models.CharField(max_length=50, blank=True, help_text="How A's intro names B")
    virtual_for_a = models.ForeignKey(RelayNumber, on_delete=models.PROTECT, related_name="+")
    virtual_for_b = models.ForeignKey(RelayNumber, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN, db_index=True)
    close_reason = models.CharField(max_length=100, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(participant_a=models.F("participant_b")), name="relay_distinct_participants"
            ),
        ]
        indexes = [
            models.Index(fields=["expires_at"], name="relay_open_expiry", condition=Q(status="open")),
        ]

    def __str__(self) -> str:
        return f"Conversation {self.pk} ({self.status})"


class ConversationLeg(models.Model):
    """One participant's side: ``real_number`` texts ``virtual_number``.

    The partial unique constraint is what makes routing unambiguous: while a leg
    is open, no other open leg pairs the same real and virtual number, so an
    inbound (from, to) maps to exactly one conversation, whatever races happen.
    """

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="legs")
    real_number = models.CharField(max_length=16)
    virtual_number = models.ForeignKey(RelayNumber, on_delete=models.PROTECT, related_name="legs")
    is_open = models.BooleanField(default=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["real_number", "virtual_number"], condition=Q(is_open=True), name="relay_unique_open_leg"
            ),
            models.UniqueConstraint(fields=["conversation", "real_number"], name="relay_one_leg_per_participant"),
        ]

    def __str__(self) -> str:
        return f"leg {self.pk} of {self.conversation_id}"


class RelayMessage(models.Model):
    """The transcript: every message people sent through relay numbers, and what we did with it.

    ``conversation`` is null for messages that matched no open conversation
    (they are answered with a fixed reply and never relayed).
    """

    class Direction(models.TextChoices):
        A_TO_B = "a_to_b", "A to B"
        B_TO_A = "b_to_a", "B to A"
        UNMATCHED = "unmatched", "No conversation"

    class Outcome(models.TextChoices):
        RELAYED = "relayed", "Relayed"
        STOPPED = "stopped", "STOP: left the conversation"
        UNMATCHED = "unmatched", "Not relayed: no open conversation"

    conversation = models.ForeignKey(
        Conversation, null=True, blank=True, on_delete=models.CASCADE, related_name="transcript"
    )
    direction = models.CharField(max_length=10, choices=Direction.choices)
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    from_number = models.CharField(max_length=16, help_text="Real number of the person who wrote")
    to_virtual = models.CharField(max_length=16, help_text="The relay number they wrote to")
    text = models.TextField(blank=True)
    media_urls = models.JSONField(default=list, blank=True)
    provider = models.CharField(max_length=20, blank=True)
    provider_message_id = models.CharField(max_length=100, blank=True)
    # No database constraint: messages are partitioned by month and a partitioned table's primary key
    # is (id, month). Django still sets it null when a message is deleted, and so does a partition drop.
    message = models.ForeignKey(
        "messaging.Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_constraint=False
    )
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["received_at", "id"]

    def __str__(self) -> str:
        return f"{self.direction} {self.outcome} in {self.conversation_id}"
