"""Role checks for views, DRF endpoints and services. Always server-side.

Roles are ordered: viewer < sender < admin, so ``role_required("sender")`` lets
admins in too. Everything also requires a signed-in, active, *approved* user;
superusers count as admins.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import TYPE_CHECKING, Concatenate, ParamSpec, TypeVar, cast

from django.contrib.auth.models import AnonymousUser
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponseBase, HttpResponseRedirect
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView

from accounts.models import User
from accounts.selectors import user_is_approved

if TYPE_CHECKING:
    from django_htmx.middleware import HtmxDetails

P = ParamSpec("P")
R = TypeVar("R", bound=HttpResponseBase)

ROLE_LEVELS = {"viewer": 1, "sender": 2, "admin": 3}


class AuthenticatedHttpRequest(HttpRequest):
    """The request of a view behind :func:`role_required`: its ``user`` signed in. For annotations only."""

    user: User
    htmx: HtmxDetails  # django_htmx.middleware.HtmxMiddleware, in every portal request


def signed_in_user(request: HttpRequest) -> User:
    """``request.user`` where only signed-in people get (the admin site, a view behind :func:`role_required`)."""
    if not isinstance(request.user, User):
        raise PermissionDenied("Sign in first.")
    return request.user


def role_level(user: User | AnonymousUser) -> int:
    if not user_is_approved(user=user) or not isinstance(user, User):
        return 0
    if user.is_superuser:
        return ROLE_LEVELS["admin"]
    return ROLE_LEVELS.get(user.role, 0)


def has_role(user: User | AnonymousUser, role: str) -> bool:
    """Whether ``user`` may act with at least ``role``."""
    if role not in ROLE_LEVELS:
        raise ValueError(f"Unknown role {role!r}")
    return role_level(user) >= ROLE_LEVELS[role]


def reads_everything(user: User | AnonymousUser) -> bool:
    """Admins and viewers read every campaign, list and message (viewers are the read-only auditors);
    a sender reads only their own. The visibility selectors of each app start from this."""
    level = role_level(user)
    return level == ROLE_LEVELS["viewer"] or level >= ROLE_LEVELS["admin"]


def check_role(user: User | AnonymousUser, role: str) -> None:
    """For services: raise PermissionDenied unless ``user`` has at least ``role``."""
    if not has_role(user, role):
        raise PermissionDenied(f"This needs the {role} role.")


def role_required(
    role: str,
) -> Callable[
    [Callable[Concatenate[AuthenticatedHttpRequest, P], R]],
    Callable[Concatenate[HttpRequest, P], R | HttpResponseRedirect],
]:
    """View decorator: anonymous people go to sign-in; signed-in people without the role get 403."""
    if role not in ROLE_LEVELS:
        raise ValueError(f"Unknown role {role!r}")

    def decorator(
        view: Callable[Concatenate[AuthenticatedHttpRequest, P], R],
    ) -> Callable[Concatenate[HttpRequest, P], R | HttpResponseRedirect]:
        @wraps(view)
        def wrapped(request: HttpRequest, /, *args: P.args, **kwargs: P.kwargs) -> R | HttpResponseRedirect:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            check_role(request.user, role)
            # is_authenticated: request.user is a User
            return view(cast(AuthenticatedHttpRequest, request), *args, **kwargs)

        return wrapped

    return decorator


# --- Django REST framework ------------------------------------------------------


class IsApproved(BasePermission):
    """Any approved person (viewer and up)."""

    message = "Your account is not approved for this portal."

    def has_permission(self, request: Request, view: APIView) -> bool:
        return has_role(request.user, "viewer")


class IsPortalAdmin(BasePermission):
    message = "This needs the admin role."

    def has_permission(self, request: Request, view: APIView) -> bool:
        return has_role(request.user, "admin")


class ReadOnlyForViewers(BasePermission):
    """Everyone approved may read; writing needs the sender role."""

    message = "Viewers have read-only access."

    def has_permission(self, request: Request, view: APIView) -> bool:
        if request.method in SAFE_METHODS:
            return has_role(request.user, "viewer")
        return has_role(request.user, "sender")
