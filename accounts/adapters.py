"""allauth adapters: nobody signs up; only approved people sign in.

An identity from a provider is let in only if it maps to an existing, active,
approved user: by an earlier connected social account, or by an email address
the provider says it verified. Everyone else sees a clear refusal page, no
account is created, and the refusal goes into the audit log.
"""

from __future__ import annotations

import logging
import smtplib
from typing import TYPE_CHECKING, Any

from allauth.account.adapter import DefaultAccountAdapter
from allauth.core.exceptions import ImmediateHttpResponse
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from accounts.http import client_ip
from accounts.models import User
from accounts.services import audit_record

if TYPE_CHECKING:
    from allauth.socialaccount.models import SocialLogin


logger = logging.getLogger(__name__)


def refuse_sign_in(request: HttpRequest, *, who: str, reason: str, user: User | None = None) -> HttpResponse:
    """Record a refused sign-in and return the page that explains it (HTTP 403)."""
    audit_record(
        actor=None,
        actor_description=who,
        action="auth.sign_in_refused",
        target=user,
        detail=reason,
        ip=client_ip(request),
    )
    return render(request, "accounts/sign_in_refused.html", {"reason": reason, "who": who}, status=403)


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request: HttpRequest) -> bool:
        return False

    def pre_login(self, request: HttpRequest, user: User, **kwargs: Any) -> HttpResponse | None:
        # allauth logs in a user whose password matched even when a backend refused
        # them (so it can show "inactive"); unapproved people must not get through.
        if user.is_active and not user.is_approved:
            from allauth.account.internal.stagekit import clear_login

            clear_login(request)
            return refuse_sign_in(
                request, who=user.get_username(), reason="Your account has not been approved yet.", user=user
            )
        response: HttpResponse | None = super().pre_login(request, user, **kwargs)
        return response

    def send_mail(self, template_prefix: str, email: str, context: dict[str, Any]) -> None:
        """A mail server that is down is logged, not a 500; the page says what it always says (it never
        tells whether an address has an account)."""
        try:
            super().send_mail(template_prefix, email, context)
        except (OSError, smtplib.SMTPException):
            logger.exception("Could not send the %s email", template_prefix)


class SocialAccountAdapter(DefaultSocialAccountAdapter):
    def is_open_for_signup(self, request: HttpRequest, sociallogin: SocialLogin) -> bool:
        return False

    def pre_social_login(self, request: HttpRequest, sociallogin: SocialLogin) -> None:
        provider = sociallogin.account.provider
        emails = [e.email for e in sociallogin.email_addresses]
        who = f"{provider}:{emails[0] if emails else sociallogin.account.uid}"
        user = sociallogin.user if sociallogin.is_existing else None
        if user is None:
            verified = [e.email for e in sociallogin.email_addresses if e.verified]
            if emails and not verified:
                reason = "Your identity provider did not confirm that you own this email address."
            else:
                reason = "This portal is by invitation only and no approved account matches this identity."
            raise ImmediateHttpResponse(refuse_sign_in(request, who=who, reason=reason))
        if not user.is_active:
            raise ImmediateHttpResponse(
                refuse_sign_in(request, who=who, reason="Your account has been deactivated.", user=user)
            )
        if not user.is_approved:
            raise ImmediateHttpResponse(
                refuse_sign_in(request, who=who, reason="Your account has not been approved yet.", user=user)
            )
        # Lets the sign-in audit event say which provider vouched for this person.
        request.sign_in_provider = provider  # type: ignore[attr-defined]  # read with getattr() in accounts.receivers
