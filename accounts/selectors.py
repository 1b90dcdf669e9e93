"""Reads for accounts: who may send from which number, tokens, the audit log."""

from __future__ import annotations

import hmac
from datetime import datetime

from django.contrib.auth.models import AnonymousUser
from django.db.models import Q, QuerySet
from django.utils import timezone

from accounts.models import ApiToken, AuditEvent, AuthorizedSender, User


def user_is_approved(*, user: User | AnonymousUser | None) -> bool:
    """Signed in, active and approved: the floor for seeing anything in the portal."""
    return bool(
        getattr(user, "is_authenticated", False)
        and getattr(user, "is_active", False)
        and getattr(user, "is_approved", False)
    )


def grants_in_force() -> QuerySet[AuthorizedSender]:
    """Grants whose holder may send from their number now: the grant is active and its user is active,
    approved and in a role that sends (what :func:`sender_grants_for` asks of one signed-in user).
    A campaign sends only from the grants in force among its own (campaigns.sending)."""
    return AuthorizedSender.objects.filter(
        is_active=True,
        user__is_active=True,
        user__is_approved=True,
        user__role__in=[User.Role.ADMIN, User.Role.SENDER],
    )


def sender_grants_for(*, user: User | AnonymousUser) -> QuerySet[AuthorizedSender]:
    """The active numbers ``user`` may send from: rows that name them, and only if their role may send."""
    if not user_is_approved(user=user) or not isinstance(user, User) or not user.can_send:
        return AuthorizedSender.objects.none()
    return grants_in_force().filter(user=user)


def user_can_send_from(*, user: User | AnonymousUser, number: str | AuthorizedSender) -> bool:
    """Whether ``user`` holds an active grant for ``number`` (an E.164 string or a grant row)."""
    grants = sender_grants_for(user=user)
    if isinstance(number, AuthorizedSender):
        return grants.filter(pk=number.pk).exists()
    return grants.filter(number=number).exists()


def senders_visible_to(*, user: User | AnonymousUser) -> QuerySet[AuthorizedSender]:
    """Sender grants: admins see every grant; everyone else (approved) only their own."""
    from accounts.permissions import has_role

    qs = AuthorizedSender.objects.select_related("user")
    if has_role(user, "admin"):
        return qs
    if not has_role(user, "viewer") or not isinstance(user, User):
        return qs.none()
    return qs.filter(user=user)


def senders_list(*, include_inactive: bool = True) -> QuerySet[AuthorizedSender]:
    qs = AuthorizedSender.objects.select_related("user").order_by("number", "user__username")
    return qs if include_inactive else qs.filter(is_active=True)


def users_list() -> QuerySet[User]:
    return User.objects.order_by("username")


def api_tokens_visible_to(*, user: User) -> QuerySet[ApiToken]:
    """Admins see every token; everyone else their own."""
    qs = ApiToken.objects.select_related("user")
    return qs if user.is_portal_admin else qs.filter(user=user)


def api_tokens_active(*, user: User, now: datetime | None = None) -> QuerySet[ApiToken]:
    """``user``'s tokens that still authenticate: not revoked, not expired (what the cap counts)."""
    now = now or timezone.now()
    return ApiToken.objects.filter(user=user, revoked_at__isnull=True).filter(
        Q(expires_at__isnull=True) | Q(expires_at__gt=now)
    )


def api_token_find(*, raw: str) -> ApiToken | None:
    """The token whose plain text is ``raw``, whatever its state (the caller checks expiry/revocation)."""
    # smsp_<prefix>_<secret>; the secret itself may contain underscores.
    parts = raw.split("_", 2)
    prefix = parts[1] if len(parts) == 3 and parts[0] == "smsp" else ""
    token = ApiToken.objects.select_related("user").filter(prefix=prefix).first() if prefix else None
    # Compare even when no row matched, so timing does not tell whether a prefix exists.
    expected = token.hashed_secret if token else "0" * 64
    if hmac.compare_digest(expected, ApiToken.hash_secret(raw)) and token is not None:
        return token
    return None


def audit_events_list(*, action: str = "", actor: str = "", target_type: str = "") -> QuerySet[AuditEvent]:
    qs = AuditEvent.objects.select_related("actor")
    if action:
        qs = qs.filter(action__startswith=action)
    if actor:
        qs = qs.filter(
            Q(actor_description__icontains=actor)
            | Q(actor__username__icontains=actor)
            | Q(actor__email__icontains=actor)
        )
    if target_type:
        qs = qs.filter(target_type=target_type)
    return qs
