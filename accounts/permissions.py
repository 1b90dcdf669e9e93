"""Role checks for views, DRF endpoints and services. Always server-side.

Roles are ordered: viewer < sender < admin, so ``role_required("sender")`` lets
admins in too. Everything also requires a signed-in, active, *approved* user;
superusers count as admins.
"""

from __future__ import annotations

from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from rest_framework.permissions import SAFE_METHODS, BasePermission

from accounts.selectors import user_is_approved

ROLE_LEVELS = {"viewer": 1, "sender": 2, "admin": 3}


def role_level(user) -> int:
    if not user_is_approved(user=user):
        return 0
    if user.is_superuser:
        return ROLE_LEVELS["admin"]
    return ROLE_LEVELS.get(user.role, 0)


def has_role(user, role: str) -> bool:
    """Whether ``user`` may act with at least ``role``."""
    if role not in ROLE_LEVELS:
        raise ValueError(f"Unknown role {role!r}")
    return role_level(user) >= ROLE_LEVELS[role]


def check_role(user, role: str) -> None:
    """For services: raise PermissionDenied unless ``user`` has at least ``role``."""
    if not has_role(user, role):
        raise PermissionDenied(f"This needs the {role} role.")


def role_required(role: str):
    """View decorator: anonymous people go to sign-in; signed-in people without the role get 403."""
    if role not in ROLE_LEVELS:
        raise ValueError(f"Unknown role {role!r}")

    def decorator(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            check_role(request.user, role)
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


# --- Django REST framework ------------------------------------------------------


class IsApproved(BasePermission):
    """Any approved person (viewer and up)."""

    message = "Your account is not approved for this portal."

    def has_permission(self, request, view) -> bool:
        return has_role(request.user, "viewer")


class IsPortalAdmin(BasePermission):
    message = "This needs the admin role."

    def has_permission(self, request, view) -> bool:
        return has_role(request.user, "admin")


class ReadOnlyForViewers(BasePermission):
    """Everyone approved may read; writing needs the sender role."""

    message = "Viewers have read-only access."

    def has_permission(self, request, view) -> bool:
        if request.method in SAFE_METHODS:
            return has_role(request.user, "viewer")
        return has_role(request.user, "sender")
