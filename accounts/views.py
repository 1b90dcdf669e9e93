"""Web pages for admins (senders, people, audit log) and for everyone's API tokens. Thin: services decide."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from accounts import selectors, services
from accounts.forms import InviteForm, SenderForm, TokenForm, UserEditForm
from accounts.http import client_ip
from accounts.models import AuthorizedSender, User
from accounts.permissions import AuthenticatedHttpRequest, role_required


def _apply_errors(form: forms.BaseForm, exc: ValidationError) -> None:
    """Put a service's ValidationError onto the form, field by field where possible."""
    if hasattr(exc, "error_dict"):
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc.messages)


# --- Senders --------------------------------------------------------------------


@require_http_methods(["GET"])
@role_required("admin")
def senders_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    return render(request, "accounts/senders_list.html", {"senders": selectors.senders_list()})


@require_http_methods(["GET", "POST"])
@role_required("admin")
def sender_create(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = SenderForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.sender_create(actor=request.user, ip=client_ip(request), **form.cleaned_data)
        except ValidationError as exc:
            _apply_errors(form, exc)
        else:
            messages.success(request, "Sender added.")
            return redirect("accounts:senders")
    return render(
        request, "accounts/sender_form.html", {"form": form, "sender": None}, status=400 if form.errors else 200
    )


@require_http_methods(["GET", "POST"])
@role_required("admin")
def sender_edit(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    sender = get_object_or_404(AuthorizedSender, pk=pk)
    initial = {f: getattr(sender, f) for f in services.SENDER_FIELDS}
    form = SenderForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            services.sender_update(actor=request.user, sender=sender, ip=client_ip(request), **form.cleaned_data)
        except ValidationError as exc:
            sender.refresh_from_db()
            _apply_errors(form, exc)
        else:
            messages.success(request, "Sender saved.")
            return redirect("accounts:senders")
    return render(
        request, "accounts/sender_form.html", {"form": form, "sender": sender}, status=400 if form.errors else 200
    )


@require_POST
@role_required("admin")
def sender_deactivate(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    sender = get_object_or_404(AuthorizedSender, pk=pk)
    services.sender_deactivate(actor=request.user, sender=sender, ip=client_ip(request))
    messages.success(request, f"{sender.number} deactivated for {sender.user}.")
    return redirect("accounts:senders")


# --- API tokens -----------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@role_required("viewer")
def tokens(request: AuthenticatedHttpRequest) -> HttpResponse:
    """List the tokens you may see and create one; the new token is shown on this response only."""
    is_admin = request.user.is_portal_admin
    form = TokenForm(request.POST or None, is_admin=is_admin)
    created = None
    status = 200
    if request.method == "POST":
        if form.is_valid():
            owner = form.cleaned_data.get("user") or request.user
            try:
                token, raw = services.api_token_create(
                    actor=request.user,
                    user=owner,
                    name=form.cleaned_data["name"],
                    expires_at=form.expires_at(),
                    ip=client_ip(request),
                )
            except ValidationError as exc:
                _apply_errors(form, exc)
            else:
                created = {"token": token, "raw": raw}
                form = TokenForm(is_admin=is_admin)
        if form.errors:
            status = 400
    context = {"form": form, "created": created, "tokens": selectors.api_tokens_visible_to(user=request.user)}
    response = render(request, "accounts/tokens.html", context, status=status)
    response["Cache-Control"] = "no-store"  # the page may hold a secret
    return response


@require_POST
@role_required("viewer")
def token_revoke(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    # Someone else's token is "not found", not "forbidden": it does not reveal that it exists.
    token = get_object_or_404(selectors.api_tokens_visible_to(user=request.user), pk=pk)
    services.api_token_revoke(actor=request.user, token=token, ip=client_ip(request))
    messages.success(request, f"Token {token.name} revoked.")
    return redirect("accounts:tokens")


# --- People and the audit log ---------------------------------------------------


@require_http_methods(["GET"])
@role_required("admin")
def users_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    return render(request, "accounts/users_list.html", {"users": selectors.users_list()})


@require_http_methods(["GET", "POST"])
@role_required("admin")
def user_invite(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = InviteForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = services.user_invite(actor=request.user, ip=client_ip(request), **form.cleaned_data)
        except ValidationError as exc:
            _apply_errors(form, exc)
        else:
            messages.success(request, f"{user.email} can now sign in.")
            return redirect("accounts:users")
    return render(request, "accounts/user_invite.html", {"form": form}, status=400 if form.errors else 200)


@require_http_methods(["GET", "POST"])
@role_required("admin")
def user_edit(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    person = get_object_or_404(User, pk=pk)
    form = UserEditForm(
        request.POST or None,
        initial={"role": person.role, "is_approved": person.is_approved, "is_active": person.is_active},
    )
    if request.method == "POST" and form.is_valid():
        try:
            with transaction.atomic():  # both changes or neither
                services.user_set_role(
                    actor=request.user, user=person, role=form.cleaned_data["role"], ip=client_ip(request)
                )
                services.user_set_access(
                    actor=request.user,
                    user=person,
                    is_approved=form.cleaned_data["is_approved"],
                    is_active=form.cleaned_data["is_active"],
                    ip=client_ip(request),
                )
        except ValidationError as exc:
            person.refresh_from_db()
            _apply_errors(form, exc)
        else:
            messages.success(request, f"{person.username} saved.")
            return redirect("accounts:users")
    return render(
        request, "accounts/user_edit.html", {"form": form, "person": person}, status=400 if form.errors else 200
    )


@require_http_methods(["GET"])
@role_required("admin")
def audit_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    filters = {k: request.GET.get(k, "").strip()[:64] for k in ("action", "actor", "target_type")}
    page = Paginator(selectors.audit_events_list(**filters), 100).get_page(request.GET.get("page"))
    return render(request, "accounts/audit_list.html", {"page": page, "filters": filters})


# --- Password reset ------------------------------------------------------------------


def password_reset(request: HttpRequest) -> HttpResponse:
    """allauth's reset page when the portal can send email; else a page that says reset is off
    (settings.PASSWORD_RESET_ENABLED, from smsportal/mail.py), not a 500 from a missing mail server."""
    if settings.PASSWORD_RESET_ENABLED:
        from allauth.account.views import password_reset as allauth_password_reset

        response: HttpResponse = allauth_password_reset(request)
        return response
    return render(request, "account/password_reset_unavailable.html", status=200)
