"""People we may text, the lists they are in, and how they gave or withdrew consent."""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.db import models

from smsportal.phone import validate_e164


class ConsentStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    OPTED_IN = "opted_in", "Opted in"
    OPTED_OUT = "opted_out", "Opted out"


class Recipient(models.Model):
    """One phone number, unique across the portal.

    Consent lifecycle (every change is a ConsentEvent)::

        pending --(double opt-in YES/START, import with stated consent, staff)--> opted_in
        pending | opted_in --(STOP keyword, staff, provider error 200)--> opted_out
        opted_out --(their own START / UNSTOP / YES from this number; admin override with a reason)--> opted_in

    Only ``opted_in`` recipients receive campaign messages, and the send path
    checks this when it claims each message, so an opt-out acts at once.
    """

    # "C": E.164 is ASCII, so byte order is the order, and the unique index (every import row, every
    # lookup) compares bytes instead of calling the locale's collation (10% of an import's PostgreSQL CPU).
    phone = models.CharField(max_length=16, unique=True, validators=[validate_e164], db_collation="C")
    first_name = models.CharField(max_length=100, blank=True)
    last_name = models.CharField(max_length=100, blank=True)
    attributes = models.JSONField(default=dict, blank=True, help_text="Extra fields for personalization")
    consent_status = models.CharField(max_length=10, choices=ConsentStatus.choices, default=ConsentStatus.PENDING)
    opted_in_at = models.DateTimeField(null=True, blank=True)
    opted_out_at = models.DateTimeField(null=True, blank=True)
    confirmation_sent_at = models.DateTimeField(null=True, blank=True, help_text="Double opt-in request sent")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        # Indexes cost every import row: ``phone``'s unique index (the upsert's ON CONFLICT) and this
        # one, nothing else. No varchar_pattern_ops copies (Django's default for an indexed CharField):
        # nothing filters these columns with a prefix LIKE (migration 0005).
        indexes = [models.Index(fields=["consent_status"], name="recipient_consent_status")]

    def __str__(self) -> str:
        return self.name or self.phone

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()

    def template_context(self) -> dict[str, object]:
        return template_context(
            attributes=self.attributes, first_name=self.first_name, last_name=self.last_name, phone=self.phone
        )


def template_context(*, attributes: dict | None, first_name: str, last_name: str, phone: str) -> dict[str, object]:
    """Variables a message body may use for one recipient: their attributes plus the standard names."""
    context: dict[str, object] = dict(attributes or {})
    first_name, last_name = first_name or "", last_name or ""
    context.update(first_name=first_name, last_name=last_name, name=f"{first_name} {last_name}".strip(), phone=phone)
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
    # No index of its own: unique_membership (recipient_list, recipient) serves lookups by list.
    recipient_list = models.ForeignKey(
        RecipientList, on_delete=models.CASCADE, related_name="memberships", db_index=False
    )
    recipient = models.ForeignKey(Recipient, on_delete=models.CASCADE, related_name="memberships")
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        # The upsert's ON CONFLICT target, and the index for "members of a list" (it used to be
        # duplicated by an identical plain index and a recipient_list-only one: migration 0005).
        constraints = [models.UniqueConstraint(fields=["recipient_list", "recipient"], name="unique_membership")]

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
    # Indexed only where set (consentevent_actor): the lookup deleting a user needs it, and most events
    # (imports from the command line, texts, providers) have no actor, so they skip that index write.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, db_index=False
    )
    actor_description = models.CharField(max_length=200, blank=True, help_text="Who or what, when not a user")
    evidence = models.TextField(blank=True)
    # Not indexed: every read of events is one recipient's (its recipient_id index, a few rows to
    # sort) or an export in id order; the index cost every imported row an entry (migration 0008).
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["actor"], condition=models.Q(actor__isnull=False), name="consentevent_actor")]

    def __str__(self) -> str:
        return f"{self.recipient} {self.from_status} -> {self.to_status} via {self.channel}"


def suppression_key(phone: str) -> str:
    """What a suppression stores instead of the number: a SHA-256 of the E.164 form (with a fixed prefix).

    A lookup hashes the number it has; nobody can list the suppressed numbers. It is
    pseudonymous, not anonymous (every number could be hashed and compared), and is
    deliberately unkeyed, so no key rotation can make the opt-outs stop matching.
    """
    return hashlib.sha256(f"smsportal-suppression:{phone}".encode()).hexdigest()


class SuppressionQuerySet(models.QuerySet["Suppression"]):
    def of(self, phone: str) -> SuppressionQuerySet:
        return self.filter(phone_hash=suppression_key(phone))


class Suppression(models.Model):
    """A number that opted out and whose recipient was deleted or erased: the opt-out outlives the record.

    It holds only a hash of the number (:func:`suppression_key`). Written by
    ``recipients.services.recipient_delete`` for an opted-out person, and by subject erasure. Whoever
    creates a recipient for a suppressed number (import, API, admin, an inbound text) creates it
    ``opted_out`` with a ConsentEvent citing this row, and the row is then removed: the recipient
    carries the opt-out again. Only the person's own START/YES (or an admin override) opts them back in.
    """

    phone_hash = models.CharField(max_length=64, unique=True, help_text="suppression_key(phone), never the number")
    reason = models.CharField(max_length=255, blank=True)
    evidence = models.TextField(blank=True, help_text="The opt-out it keeps (the last opt-out event)")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = SuppressionQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"suppression {self.phone_hash[:12]}…"


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

    @property
    def media_links(self) -> list[str]:
        """The MMS media URLs a page may link to: http(s) only, never ``javascript:`` or ``data:``."""
        return [u for u in self.media_urls if isinstance(u, str) and u.lower().startswith(("https://", "http://"))]


class ImportJob(models.Model):
    """One CSV import, with its progress and outcome.

    Lifecycle::

        draft --columns mapped, started--> pending --worker starts--> running --end of file--> completed
                                                                    \\--unreadable file / fatal error--> failed

    ``draft``: uploaded on the web import page, waiting for its column mapping and preview
    (the API and the command line start at ``pending``). The uploaded copy is deleted when the
    job ends (or its draft is cancelled); the counters and row report stay.

    Counters are updated after every chunk, so a page or an API can poll them.
    ``total_bytes``/``processed_bytes`` give the progress estimate (rows are not
    counted ahead: a million-row file is never read twice just for a total).
    """

    class Status(models.TextChoices):
        DRAFT = "draft", "Not started"
        PENDING = "pending", "Waiting"
        RUNNING = "running", "Running"
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed"

    recipient_list = models.ForeignKey(
        RecipientList, null=True, blank=True, on_delete=models.SET_NULL, related_name="imports"
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    file = models.CharField(max_length=500, help_text="Path of the uploaded file")
    original_name = models.CharField(max_length=255, blank=True)
    region = models.CharField(max_length=2, blank=True, help_text="Default region for numbers without +country")
    consent_column = models.CharField(max_length=100, blank=True)
    mapping = models.JSONField(
        default=dict,
        blank=True,
        help_text='Column per role, by header name, e.g. {"phone": "Mobile", "consent": ""} ("" = none); '
        'roles not named are found by header name; "ignore": [headers] are not kept as attributes',
    )
    consent_evidence = models.TextField(blank=True, help_text="Evidence for opted_in rows without their own")
    consent_at = models.CharField(max_length=40, blank=True, help_text="Date for opted_in rows without their own")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True)
    encoding = models.CharField(max_length=20, blank=True)
    total_bytes = models.BigIntegerField(default=0)
    processed_bytes = models.BigIntegerField(default=0)
    processed_rows = models.BigIntegerField(default=0)
    created_count = models.BigIntegerField(default=0, help_text="New recipients")
    updated_count = models.BigIntegerField(default=0, help_text="Rows merged into existing recipients")
    duplicate_count = models.BigIntegerField(default=0, help_text="Rows repeating a number seen earlier in the file")
    rejected_count = models.BigIntegerField(default=0)
    consent_changes = models.BigIntegerField(default=0)
    error = models.TextField(blank=True, help_text="Why the import failed as a whole")
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Import {self.pk} {self.original_name} ({self.status})"

    @property
    def percent(self) -> int:
        if self.status == self.Status.COMPLETED:
            return 100
        if not self.total_bytes:
            return 0
        return min(99, int(100 * self.processed_bytes / self.total_bytes))

    @property
    def is_finished(self) -> bool:
        return self.status in {self.Status.COMPLETED, self.Status.FAILED}


class ImportRowError(models.Model):
    """A row an import rejected (or only partly applied), and why."""

    # No index of its own: importrowerror_job_row starts with job (one index entry less per rejected row).
    job = models.ForeignKey(ImportJob, on_delete=models.CASCADE, related_name="row_errors", db_index=False)
    row_number = models.BigIntegerField(help_text="Line in the file; the header is row 1")
    phone = models.CharField(max_length=100, blank=True)
    reason = models.CharField(max_length=255)
    raw = models.TextField(blank=True, help_text="The row as read, truncated")

    class Meta:
        ordering = ["job", "row_number", "id"]
        indexes = [models.Index(fields=["job", "row_number"], name="importrowerror_job_row")]

    def __str__(self) -> str:
        return f"row {self.row_number}: {self.reason}"
