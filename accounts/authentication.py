"""REST API authentication with API tokens: ``Authorization: Bearer <token>`` (or ``Token <token>``)."""

from __future__ import annotations

from django.utils import timezone
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from accounts.models import ApiToken, User
from accounts.selectors import api_token_find
from accounts.services import api_token_touch

KEYWORDS = {b"bearer", b"token"}


class ApiTokenAuthentication(BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[User, ApiToken] | None:
        header = get_authorization_header(request).split()
        if not header or header[0].lower() not in KEYWORDS:
            return None  # not ours: let the next authenticator (the session) try
        if len(header) != 2:
            raise AuthenticationFailed("Malformed Authorization header: use 'Bearer <token>'.")
        try:
            raw = header[1].decode("ascii")
        except UnicodeDecodeError:
            raise AuthenticationFailed("Invalid API token.") from None
        token = api_token_find(raw=raw)
        if token is None:
            raise AuthenticationFailed("Invalid API token.")
        now = timezone.now()
        if token.revoked_at is not None:
            raise AuthenticationFailed("This API token has been revoked.")
        if token.expires_at is not None and token.expires_at <= now:
            raise AuthenticationFailed("This API token has expired.")
        user = token.user
        if not (user.is_active and user.is_approved):
            raise AuthenticationFailed("The owner of this API token may no longer sign in.")
        api_token_touch(token=token, now=now)
        return user, token

    def authenticate_header(self, request: Request) -> str:
        # A non-empty value makes DRF answer 401 (not 403) to unauthenticated requests.
        return 'Bearer realm="api"'
