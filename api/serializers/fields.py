"""Shared serializer fields and validators."""

from __future__ import annotations

from rest_framework import serializers

from smsportal.phone import InvalidNumber, normalize


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
