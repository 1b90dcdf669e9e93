"""The web UI's roles, for the API: viewers read, senders and admins write, admins manage senders."""

from __future__ import annotations

from rest_framework.permissions import SAFE_METHODS, BasePermission


class ReadOnlyUnlessSender(BasePermission):
    """Anyone signed in may read; only admins and senders may change things."""

    message = "Your role is read-only."

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated and user.is_active):
            return False
        return request.method in SAFE_METHODS or bool(getattr(user, "can_send", False))


class ReadOnlyUnlessAdmin(BasePermission):
    message = "Only admins may change this."

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated and user.is_active):
            return False
        return request.method in SAFE_METHODS or bool(getattr(user, "is_portal_admin", False))
