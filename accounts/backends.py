"""Authentication backends that only let approved, active people in.

``user_can_authenticate`` is also what Django uses to restore a session, so an
admin who withdraws someone's approval ends their access on the next request.
While ``PASSWORD_LOGIN_ENABLED`` is false, only superusers (the break-glass
admin) may sign in with a password.
"""

from __future__ import annotations

from allauth.account.auth_backends import AuthenticationBackend as AllauthBackend
from django.conf import settings
from django.contrib.auth.backends import ModelBackend


def _approved(user) -> bool:
    return bool(getattr(user, "is_active", False) and getattr(user, "is_approved", False))


def _password_allowed(user) -> bool:
    return settings.PASSWORD_LOGIN_ENABLED or bool(getattr(user, "is_superuser", False))


class ApprovedModelBackend(ModelBackend):
    def user_can_authenticate(self, user) -> bool:
        return _approved(user)

    def authenticate(self, request, username=None, password=None, **kwargs):
        user = super().authenticate(request, username=username, password=password, **kwargs)
        return user if user is not None and _password_allowed(user) else None


class ApprovedAllauthBackend(AllauthBackend):
    def user_can_authenticate(self, user) -> bool:
        return _approved(user)

    def authenticate(self, request, **credentials):
        user = super().authenticate(request, **credentials)
        return user if user is not None and _password_allowed(user) else None
