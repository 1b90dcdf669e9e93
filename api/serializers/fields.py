"""Shared serializer fields and validators."""

from __future__ import annotations

from django.db.models import QuerySet
from rest_framework import serializers

from recipients.models import RecipientList
from recipients.selectors import recipient_lists_visible_to
from smsportal.phone import InvalidNumber, normalize


class VisibleListField(serializers.PrimaryKeyRelatedField):
    """A list id among the lists the requesting person sees (recipients.selectors); another sender's
    list answers like one that does not exist."""

    def __init__(self, **kwargs):
        super().__init__(queryset=RecipientList.objects.all(), **kwargs)

    def get_queryset(self) -> QuerySet[RecipientList]:
        request = self.context.get("request")
        user = getattr(request, "user", None)
        return recipient_lists_visible_to(user=user) if user is not None else RecipientList.objects.none()


def clean_phone(value: str) -> str:
    """E.164 or a field error saying why not."""
    try:
        return normalize(value)
    except InvalidNumber as exc:
        raise serializers.ValidationError(f"{value!r} is {exc}.") from None


def clean_attributes(value) -> dict:
    if not isinstance(value, dict):
        raise serializers.ValidationError("Give an object of names to values.")
    for key, item in value.items():
        if isinstance(item, dict | list):
            raise serializers.ValidationError(f"{key!r}: values must be text, numbers, true/false or null.")
    return value
