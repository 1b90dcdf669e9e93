"""The Django admin shows staff what the portal's visibility rules let them see (no second rule)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db.models import QuerySet
from django.http import HttpRequest

from accounts.permissions import reads_everything


def staff_visible(
    request: HttpRequest, queryset: QuerySet[Any], visible_to: Callable[..., QuerySet[Any]]
) -> QuerySet[Any]:
    """``queryset`` narrowed to what ``visible_to(user=...)`` (an app's selector) allows; untouched for
    superusers and those who read everything, so the admin's big lists stay one plain query."""
    if request.user.is_superuser or reads_everything(request.user):
        return queryset
    return queryset.filter(pk__in=visible_to(user=request.user).values("pk"))
