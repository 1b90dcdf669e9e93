"""Authentication backends that only let approved, active people in.

``user_can_authenticate`` is also what Django uses to restore a session, so an
admin who withdraws someone's approval ends their access on the next request.
While ``PASSWORD_LOGIN_ENABLED`` is false, only superusers (the break-glass
admin) may sign in with a password.
"""

from __future__ import annotations

from typing import Any

from allauth.account.auth_backends import AuthenticationBackend as AllauthBackend
from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest

from accounts.models import User


def _approved(user: object) -> bool:
    return bool(getattr(user, "is_active", False) and getattr(user, "is_approved", False))


def _password_allowed(user: object) -> bool:
    return settings.PASSWORD_LOGIN_ENABLED or bool(getattr(user, "is_superuser", False))


class ApprovedModelBackend(ModelBackend):
    def user_can_authenticate(self, user: User | AnonymousUser | None) -> bool:
        return _approved(user)

    def authenticate(
        self, request: HttpRequest | None, username: str | None = None, password: str | None = None, **kwargs: Any
    ) -> User | None:
        user = super().authenticate(request, username=username, password=password, **kwargs)
        return user if user is not None and _password_allowed(user) else None


class ApprovedAllauthBackend(AllauthBackend):
    def user_can_authenticate(self, user: User | AnonymousUser | None) -> bool:
        return _approved(user)

    def authenticate(self, request: HttpRequest | None, **credentials: Any) -> User | None:
        user = super().authenticate(request, **credentials)
        return user if user is not None and _password_allowed(user) else None
