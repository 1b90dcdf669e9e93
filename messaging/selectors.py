"""Reads for messages: who may see which outbound message."""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser
from django.db.models import Q, QuerySet

from accounts.models import User
from accounts.permissions import has_role, reads_everything
from messaging.models import Message


def messages_visible_to(*, user: User | AnonymousUser) -> QuerySet[Message]:
    """Messages follow campaigns: admins and viewers see every message; a sender sees their campaigns'
    messages and the messages they sent themselves (single sends, relay messages they started)."""
    qs = Message.objects.all()
    if reads_everything(user):
        return qs
    if not has_role(user, "viewer") or not isinstance(user, User):
        return qs.none()
    return qs.filter(Q(campaign__created_by=user) | Q(campaign__isnull=True, created_by=user))
