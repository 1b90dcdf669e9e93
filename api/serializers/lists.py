from __future__ import annotations

from rest_framework import serializers

from recipients.models import RecipientList


class RecipientListSerializer(serializers.ModelSerializer):
    class Meta:
        model = RecipientList
        fields = ["id", "name", "description", "is_archived", "created_at"]
        read_only_fields = ["id", "created_at"]
