"""Staff accounts, their roles, and which numbers each may send from."""

from __future__ import annotations

import hashlib

from django.contrib.auth.models import AbstractUser
from django.core.validators import MinValueValidator
from django.db import models

from providers import registry as sms_providers
from smsportal.phone import validate_e164


class User(AbstractUser):
    """A staff member. ``role`` decides what they may do; checks are server-side.

    admin: everything (users, roles, senders). sender: launches campaigns from
    the numbers an AuthorizedSender row grants them. viewer: read-only.
    ``is_approved`` gates sign-in: only approved people get in, whatever
    identity provider vouches for them.
    """

    class Role(models.TextChoices):
        ADMIN = "admin", "Admin"
        SENDER = "sender", "Sender"
        VIEWER = "viewer", "Viewer"

    role = models.CharField(max_length=10, choices=Role.choices, default=Role.VIEWER)
    is_approved = models.BooleanField(
        default=True,
        help_text="Only approved people can sign in. Refused identities never get an account.",
    )
    first_run_dismissed_at = models.DateTimeField(
        null=True, blank=True, help_text="When they closed the dashboard's first-run panel (it stays closed)."
    )

    @property
    def is_portal_admin(self) -> bool:
        return self.is_active and (self.role == self.Role.ADMIN or self.is_superuser)

    @property
    def can_send(self) -> bool:
        return self.is_active and self.role in {self.Role.ADMIN, self.Role.SENDER}


class AuthorizedSender(models.Model):
    """A grant: ``user`` may send from ``number`` at ``provider``.

    Several users may hold grants for the same number; a campaign sends from a
    number only if its creator holds an active grant for it. ``max_mps`` is the
    number's messages-per-second limit (segments count), enforced across all
    workers; 0 means no limit of our own. ``relay`` marks numbers reserved for
    masked two-way conversations.
    """

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="sender_grants")
    number = models.CharField(max_length=16, validators=[validate_e164], help_text="E.164, e.g. +14155550100")
    # Choices and default come from providers.registry (callables: migrations name no provider).
    provider = models.CharField(max_length=20, choices=sms_providers.choices, default=sms_providers.default_name)
    label = models.CharField(max_length=100, blank=True)
    is_active = models.BooleanField(default=True)
    max_mps = models.FloatField(
        default=1.0,
        validators=[MinValueValidator(0)],
        help_text="Messages per second; 0 = unlimited",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "number"], name="unique_sender_grant")]
        ordering = ["number"]

    def __str__(self) -> str:
        return f"{self.label or self.number} ({self.provider})"


class ApiToken(models.Model):
    """A credential for the REST API, acting as ``user``.

    The full token is ``smsp_<prefix>_<secret>``; only ``prefix`` (for lookup) and
    the SHA-256 of the whole token are stored, so it is shown once at creation.
    A token is usable while not revoked and not past ``expires_at``.
    """

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True)
    hashed_secret = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API token"
        verbose_name_plural = "API tokens"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @staticmethod
    def hash_secret(raw: str) -> str:
        # The secret has 256 bits of entropy, so a fast hash is enough (no stretching needed).
        return hashlib.sha256(raw.encode()).hexdigest()


class AuditEvent(models.Model):
    """Who did what to which object, and when. Append-only: rows are never changed or deleted.

    ``actor`` is null for the system (sweepers, auto-pause) and for refused
    sign-ins; ``actor_description`` keeps a readable name even after the user
    is deleted.
    """

    actor = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    actor_description = models.CharField(max_length=255, blank=True)
    action = models.CharField(max_length=64, db_index=True)
    target_type = models.CharField(max_length=64, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    target_repr = models.CharField(max_length=255, blank=True)
    detail = models.TextField(blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["target_type", "target_id"])]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.actor_description} {self.action}"
