"""The web UI's roles, for the API (accounts.permissions): viewers read, senders write, admins manage senders."""

from __future__ import annotations

from rest_framework.permissions import SAFE_METHODS, BasePermission

from accounts.models import ApiToken
from accounts.permissions import ReadOnlyForViewers, has_role
from api.scopes import scope_for

ReadOnlyUnlessSender = ReadOnlyForViewers


class TokenHasScope(BasePermission):
    """An API token acts only within its scopes (api.scopes); sessions are limited by the role alone.

    Every API view runs this first (api.views.base.ApiMixin.get_permissions), whatever its own
    permission classes are.
    """

    message = "This API token does not have the scope for this."

    def has_permission(self, request, view) -> bool:
        token = request.auth
        if not isinstance(token, ApiToken):
            return True
        basename = getattr(view, "basename", None) or ""
        action = getattr(view, "action", None) or request.method.lower()
        scope = scope_for(basename=basename, action=action, safe=request.method in SAFE_METHODS)
        if scope is None:
            self.message = "No API token scope covers this endpoint; use a signed-in session."
            return False
        if not token.has_scope(scope):
            self.message = f"This API token lacks the {str(scope)!r} scope (it has: {', '.join(token.scopes)})."
            return False
        return True


class ReadOnlyUnlessAdmin(BasePermission):
    """Everyone approved may read (their own rows, see the view); only admins write."""

    message = "Only admins may change this."

    def has_permission(self, request, view) -> bool:
        return has_role(request.user, "viewer" if request.method in SAFE_METHODS else "admin")
