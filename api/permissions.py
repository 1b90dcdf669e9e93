"""The web UI's roles, for the API (accounts.permissions): viewers read, senders write, admins manage senders."""

from __future__ import annotations

from rest_framework.permissions import SAFE_METHODS, BasePermission

from accounts.permissions import ReadOnlyForViewers, has_role

ReadOnlyUnlessSender = ReadOnlyForViewers


class ReadOnlyUnlessAdmin(BasePermission):
    """Everyone approved may read (their own rows, see the view); only admins write."""

    message = "Only admins may change this."

    def has_permission(self, request, view) -> bool:
        return has_role(request.user, "viewer" if request.method in SAFE_METHODS else "admin")
