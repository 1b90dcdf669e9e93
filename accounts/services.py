"""Writes for accounts: the audit log, people and their roles, sender grants, API tokens.

``audit_record`` is the one way to write the audit log; every other write here
records itself through it.
"""

from __future__ import annotations

import logging
import secrets
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Model, Q
from django.utils import timezone

from accounts.models import ApiToken, AuditEvent, AuthorizedSender, User
from smsportal.phone import InvalidNumber, normalize

logger = logging.getLogger("smsportal.audit")

TOKEN_PREFIX = "smsp"


def _describe_actor(actor: User | AnonymousUser | str | None) -> str:
    if actor is None:
        return "system"
    if isinstance(actor, str):
        return actor
    return getattr(actor, "email", "") or getattr(actor, "username", "") or str(actor)


def audit_record(
    *,
    actor: User | AnonymousUser | str | None,
    action: str,
    target: Model | None = None,
    detail: str = "",
    ip: str | None = None,
    actor_description: str = "",
) -> AuditEvent:
    """Append one event. ``actor`` is a User, None (the system) or a description string."""
    user = actor if isinstance(actor, User) and actor.pk else None
    event = AuditEvent.objects.create(
        actor=user,
        actor_description=(actor_description or _describe_actor(actor))[:255],
        action=action[:64],
        target_type=target._meta.label_lower if target is not None and hasattr(target, "_meta") else "",
        target_id=str(getattr(target, "pk", "") or "") if target is not None else "",
        target_repr=str(target)[:255] if target is not None else "",
        detail=detail,
        ip=ip or None,
    )
    logger.info(
        "audit %s by %s on %s:%s %s", action, event.actor_description, event.target_type, event.target_id, detail
    )
    return event


# --- People and roles -----------------------------------------------------------


def user_invite(*, actor: User, email: str, role: str, username: str = "", ip: str | None = None) -> User:
    """Approve a person by email: they can sign in with any provider that vouches for that address.

    The account has no password; the email counts as verified because an admin vouched for it.
    """
    from allauth.account.models import EmailAddress

    email = email.strip().lower()
    if role not in User.Role.values:
        raise ValidationError({"role": f"Unknown role {role!r}."})
    if User.objects.filter(email__iexact=email).exists():
        raise ValidationError({"email": "Someone with this email address already has an account."})
    username = (username or email).strip()[:150]
    if User.objects.filter(username__iexact=username).exists():
        raise ValidationError({"username": "This username is taken."})
    with transaction.atomic():
        user = User(username=username, email=email, role=role, is_approved=True)
        user.set_unusable_password()
        user.full_clean(exclude=["password"])
        user.save()
        EmailAddress.objects.create(user=user, email=email, verified=True, primary=True)
        audit_record(actor=actor, action="user.invite", target=user, detail=f"role={role}", ip=ip)
    return user


def user_may_change(*, actor: User | AnonymousUser | None, user: User) -> bool:
    """Whether ``actor`` may change ``user``'s role, access or flags: only a superuser changes a superuser
    (so an admin cannot demote, lock out or delete the person who appointed them)."""
    return not user.is_superuser or bool(getattr(actor, "is_superuser", False))


def check_may_change_user(*, actor: User | AnonymousUser | None, user: User) -> None:
    if not user_may_change(actor=actor, user=user):
        raise PermissionDenied("Only a superuser can change a superuser's role or access.")


def user_set_role(*, actor: User, user: User, role: str, ip: str | None = None) -> User:
    """Change someone's role. Admins cannot demote themselves (so there is always one admin left), and
    only a superuser changes a superuser."""
    check_may_change_user(actor=actor, user=user)
    if role not in User.Role.values:
        raise ValidationError({"role": f"Unknown role {role!r}."})
    if user.pk == getattr(actor, "pk", None) and role != User.Role.ADMIN and user.role == User.Role.ADMIN:
        raise ValidationError({"role": "You cannot remove your own admin role."})
    old = user.role
    if old == role:
        return user
    with transaction.atomic():
        User.objects.filter(pk=user.pk).update(role=role)
        user.role = role
        audit_record(actor=actor, action="user.set_role", target=user, detail=f"{old} -> {role}", ip=ip)
    return user


def user_set_access(*, actor: User, user: User, is_approved: bool, is_active: bool, ip: str | None = None) -> User:
    """Approve or withdraw someone; withdrawing ends their sessions on their next request. Only a
    superuser changes a superuser."""
    check_may_change_user(actor=actor, user=user)
    if user.pk == getattr(actor, "pk", None) and not (is_approved and is_active):
        raise ValidationError({"is_approved": "You cannot lock yourself out."})
    changes = []
    if user.is_approved != is_approved:
        changes.append(f"approved {user.is_approved} -> {is_approved}")
    if user.is_active != is_active:
        changes.append(f"active {user.is_active} -> {is_active}")
    if not changes:
        return user
    with transaction.atomic():
        User.objects.filter(pk=user.pk).update(is_approved=is_approved, is_active=is_active)
        user.is_approved, user.is_active = is_approved, is_active
        audit_record(actor=actor, action="user.set_access", target=user, detail="; ".join(changes), ip=ip)
    return user


# --- Sender grants --------------------------------------------------------------

SENDER_FIELDS = ("user", "number", "provider", "label", "is_active", "max_mps")


def _sender_save(sender: AuthorizedSender) -> None:
    try:
        sender.number = normalize(sender.number or "")
    except InvalidNumber as exc:
        raise ValidationError({"number": str(exc) or "Not a valid phone number."}) from None
    sender.full_clean()
    sender.save()


def sender_create(*, actor: User, ip: str | None = None, **fields: Any) -> AuthorizedSender:
    """Grant ``user`` the right to send from ``number``."""
    sender = AuthorizedSender(**{k: v for k, v in fields.items() if k in SENDER_FIELDS})
    with transaction.atomic():
        _sender_save(sender)
        audit_record(actor=actor, action="sender.create", target=sender, detail=f"user={sender.user}", ip=ip)
    return sender


def sender_update(*, actor: User, sender: AuthorizedSender, ip: str | None = None, **fields: Any) -> AuthorizedSender:
    changes = []
    for name, value in fields.items():
        if name in SENDER_FIELDS and getattr(sender, name) != value:
            changes.append(f"{name}: {getattr(sender, name)} -> {value}")
            setattr(sender, name, value)
    if not changes:
        return sender
    with transaction.atomic():
        _sender_save(sender)
        audit_record(actor=actor, action="sender.update", target=sender, detail="; ".join(changes), ip=ip)
    return sender


def sender_deactivate(*, actor: User, sender: AuthorizedSender, ip: str | None = None) -> AuthorizedSender:
    if not sender.is_active:
        return sender
    with transaction.atomic():
        AuthorizedSender.objects.filter(pk=sender.pk).update(is_active=False)
        sender.is_active = False
        audit_record(actor=actor, action="sender.deactivate", target=sender, ip=ip)
    return sender


# --- API tokens -----------------------------------------------------------------


def api_token_create(
    *, actor: User, user: User, name: str, expires_at: datetime | None = None, ip: str | None = None
) -> tuple[ApiToken, str]:
    """Create a token and return it with its plain text, which is never stored and shown only now."""
    name = name.strip()
    if not name:
        raise ValidationError({"name": "Give the token a name, e.g. the integration that uses it."})
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationError({"expires_at": "The expiry date must be in the future."})
    if actor.pk != user.pk and not actor.is_portal_admin:
        raise ValidationError("Only an admin can create tokens for someone else.")
    prefix = secrets.token_hex(6)
    raw = f"{TOKEN_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    with transaction.atomic():
        token = ApiToken.objects.create(
            user=user, name=name[:100], prefix=prefix, hashed_secret=ApiToken.hash_secret(raw), expires_at=expires_at
        )
        audit_record(actor=actor, action="token.create", target=token, detail=f"for {user.username}", ip=ip)
    return token, raw


def api_token_revoke(*, actor: User, token: ApiToken, ip: str | None = None) -> ApiToken:
    if token.revoked_at is not None:
        return token
    with transaction.atomic():
        now = timezone.now()
        ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=now)
        token.revoked_at = now
        audit_record(actor=actor, action="token.revoke", target=token, detail=f"of {token.user.username}", ip=ip)
    return token


def api_token_touch(*, token: ApiToken, now: datetime | None = None) -> None:
    """Note the token was used; at most one write a minute per token."""
    now = now or timezone.now()
    stale = now - timedelta(seconds=60)
    updated = ApiToken.objects.filter(Q(last_used_at__isnull=True) | Q(last_used_at__lt=stale), pk=token.pk).update(
        last_used_at=now
    )
    if updated:
        token.last_used_at = now


def user_dismiss_first_run(*, user: User) -> None:
    """Close the dashboard's first-run panel for this person, for good (idempotent)."""
    User.objects.filter(pk=user.pk, first_run_dismissed_at__isnull=True).update(first_run_dismissed_at=timezone.now())
