"""People we may text, the lists they are in, and how they gave or withdrew consent."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from recipients.phone import validate_e164


class ConsentStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    OPTED_IN = "opted_in", "Opted in"
    OPTED_OUT = "opted_out", "Opted out"


class Recipient(models.Model):
    """One phone number, unique across the portal.

    Consent lifecycle (every change is a ConsentEvent)::

        pending --(double opt-in YES/START, import with stated consent, staff)--> opted_in
        pending | opted_in --(STOP keyword, staff, provider error 200)--> opted_out
        opted_out --(START / UNSTOP / YES reply)--> opted_in

    Only ``opted_in`` recipients receive campaign messages, and the send path
    checks this when it claims each message, so an opt-out acts at once.
    """

    phone = models.CharField(max_length=16, unique=True, validators=[validate_e164])
    first_name = models.CharField(max_length=100, blank=True)
    last_name = models.CharField(max_length=100, blank=True)
    attributes = models.JSONField(default=dict, blank=True, help_text="Extra fields for personalization")
    consent_status = models.CharField(
        max_length=10, choices=ConsentStatus.choices, default=ConsentStatus.PENDING, db_index=True
    )
    opted_in_at = models.DateTimeField(null=True, blank=True)
    opted_out_at = models.DateTimeField(null=True, blank=True)
    confirmation_sent_at = models.DateTimeField(null=True, blank=True, help_text="Double opt-in request sent")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.name or self.phone

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()

    def template_context(self) -> dict[str, object]:
        context: dict[str, object] = dict(self.attributes or {})
        context.update(first_name=self.first_name, last_name=self.last_name, name=self.name, phone=self.phone)
        return context


class RecipientList(models.Model):
    """A named list. Archived lists keep their members but cannot be targeted."""

    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    is_archived = models.BooleanField(default=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    members = models.ManyToManyField(Recipient, through="Membership", related_name="lists")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    recipient_list = models.ForeignKey(RecipientList, on_delete=models.CASCADE, related_name="memberships")
    recipient = models.ForeignKey(Recipient, on_delete=models.CASCADE, related_name="memberships")
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["recipient_list", "recipient"], name="unique_membership")]
        indexes = [models.Index(fields=["recipient_list", "recipient"], name="membership_list_recipient")]

    def __str__(self) -> str:
        return f"{self.recipient_id} in {self.recipient_list_id}"


class ConsentEvent(models.Model):
    """Append-only trail of consent changes: who or what, when, how, and the evidence."""

    class Channel(models.TextChoices):
        SMS = "sms", "SMS reply"
        IMPORT = "import", "CSV import"
        WEB = "web", "Web UI"
        API = "api", "REST API"
        ADMIN = "admin", "Django admin"
        PROVIDER = "provider", "Provider report"
        RELAY = "relay", "Relay conversation"

    recipient = models.ForeignKey(Recipient, on_delete=models.CASCADE, related_name="consent_events")
    from_status = models.CharField(max_length=10, choices=ConsentStatus.choices)
    to_status = models.CharField(max_length=10, choices=ConsentStatus.choices)
    channel = models.CharField(max_length=10, choices=Channel.choices)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    actor_description = models.CharField(max_length=200, blank=True, help_text="Who or what, when not a user")
    evidence = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.recipient} {self.from_status} -> {self.to_status} via {self.channel}"


class InboundMessage(models.Model):
    """A message people sent to one of our numbers. Keywords are acted on; the rest is the inbox."""

    class Kind(models.TextChoices):
        OPT_OUT = "opt_out", "Opt-out keyword"
        OPT_IN = "opt_in", "Opt-in keyword"
        HELP = "help", "Help keyword"
        MESSAGE = "message", "Message"
        RELAY = "relay", "Relayed"

    provider = models.CharField(max_length=20)
    provider_message_id = models.CharField(max_length=100, blank=True)
    sender = models.CharField(max_length=16, db_index=True)
    to = models.CharField(max_length=16)
    text = models.TextField(blank=True)
    media_urls = models.JSONField(default=list, blank=True)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.MESSAGE)
    recipient = models.ForeignKey(Recipient, null=True, blank=True, on_delete=models.SET_NULL, related_name="inbound")
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-received_at", "-id"]

    def __str__(self) -> str:
        return f"{self.sender} -> {self.to}: {self.text[:40]}"
