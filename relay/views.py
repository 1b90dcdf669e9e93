"""Web pages for the relay: list + create form, transcript, close."""

from __future__ import annotations

from datetime import timedelta

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from accounts.permissions import AuthenticatedHttpRequest, role_required
from relay import selectors, services
from relay.forms import ConversationForm
from relay.models import Conversation


@role_required("viewer")
@require_http_methods(["GET", "POST"])
def conversation_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    can_manage = selectors.relay_can_manage(user=request.user)
    form = ConversationForm(request.POST if request.method == "POST" else None) if can_manage else None
    if request.method == "POST":
        if not can_manage or form is None:  # form: None exactly when the user may not manage
            raise PermissionDenied("Only admins and senders may create relay conversations.")
        if form.is_valid():
            data = form.cleaned_data
            hours = data.get("expires_in_hours")
            try:
                conversation = services.conversation_create(
                    participant_a=data["participant_a"],
                    participant_b=data["participant_b"],
                    name_a=data["name_a"],
                    name_b=data["name_b"],
                    ttl=timedelta(hours=hours) if hours else None,
                    created_by=request.user,
                )
            except services.RelayError as exc:
                form.add_error(exc.field if exc.field in form.fields else None, exc.message)
            else:
                messages.success(request, f"Conversation {conversation.pk} opened; both sides were introduced.")
                return redirect("relay:detail", pk=conversation.pk)
    status = request.GET.get("status") or None
    if status not in {None, *Conversation.Status.values}:
        status = None
    conversations = [
        selectors.conversation_view(conversation=c, user=request.user)
        for c in selectors.conversation_list(status=status)[:200]
    ]
    return render(
        request,
        "relay/conversation_list.html",
        {
            "conversations": conversations,
            "form": form,
            "can_manage": can_manage,
            "status": status,
            "statuses": Conversation.Status.choices,
        },
        status=400 if form is not None and form.errors else 200,
    )


@role_required("viewer")
def conversation_detail(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    conversation = selectors.conversation_get(pk=pk)
    if conversation is None:
        raise Http404("No such conversation")
    return render(
        request,
        "relay/conversation_detail.html",
        {
            "conversation": selectors.conversation_view(conversation=conversation, user=request.user),
            "transcript": selectors.transcript_view(conversation=conversation, user=request.user),
            "can_manage": selectors.relay_can_manage(user=request.user),
            "is_open": conversation.status == Conversation.Status.OPEN,
        },
    )


@role_required("sender")
@require_POST
def conversation_close(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    if not selectors.relay_can_manage(user=request.user):
        raise PermissionDenied("Only admins and senders may close relay conversations.")
    conversation = selectors.conversation_get(pk=pk)
    if conversation is None:
        raise Http404("No such conversation")
    if services.conversation_close(
        conversation=conversation, reason=f"closed by {request.user.username}", actor=request.user
    ):
        messages.success(request, "Conversation closed; its relay numbers are free again.")
    else:
        messages.info(request, f"The conversation was already {conversation.status}.")
    return redirect("relay:detail", pk=pk)
