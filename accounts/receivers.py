"""Audit sign-ins and sign-outs (Django's auth signals cover both password and social logins)."""

from __future__ import annotations

from django.contrib.auth.signals import user_logged_in, user_logged_out
from django.dispatch import receiver
from django.http import HttpRequest

from accounts.http import client_ip
from accounts.models import User
from accounts.services import audit_record


@receiver(user_logged_in, dispatch_uid="accounts.audit_sign_in")
def audit_sign_in(sender: type[User], request: HttpRequest, user: User, **kwargs: object) -> None:
    provider = getattr(request, "sign_in_provider", None)
    method = f"via {provider}" if provider else "with a password"
    audit_record(actor=user, action="auth.sign_in", target=user, detail=method, ip=client_ip(request))


@receiver(user_logged_out, dispatch_uid="accounts.audit_sign_out")
def audit_sign_out(sender: type[User] | None, request: HttpRequest, user: User | None, **kwargs: object) -> None:
    if user is not None:
        audit_record(actor=user, action="auth.sign_out", target=user, ip=client_ip(request))
