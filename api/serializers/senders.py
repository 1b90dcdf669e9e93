from __future__ import annotations

from rest_framework import serializers

from accounts.models import AuthorizedSender, User

from .fields import clean_phone


class AuthorizedSenderSerializer(serializers.ModelSerializer):
    user = serializers.PrimaryKeyRelatedField(queryset=User.objects.all(), help_text="Who may send from the number")
    username = serializers.CharField(source="user.username", read_only=True)
    number = serializers.CharField(max_length=32, help_text="Stored as E.164")

    class Meta:
        model = AuthorizedSender
        fields = ["id", "user", "username", "number", "provider", "label", "is_active", "max_mps", "created_at"]
        read_only_fields = ["id", "username", "created_at"]
        # The defaults a new number gets, stated here so the schema says them (api.schema adds `default`).
        extra_kwargs = {
            "max_mps": {
                "help_text": "Messages (segments) per second from this number, across all workers; 0 = no limit of"
                " our own. Default 1.0: the safe rate for a US long code; toll-free and registered 10DLC numbers"
                " usually allow more (ask your provider)."
            },
            "provider": {"help_text": "Which provider sends for this number. Default: the first configured provider."},
            "is_active": {"help_text": "Inactive grants cannot send. Default true."},
            "label": {"help_text": "A name people recognise the number by. Default empty."},
        }

    def validate_number(self, value: str) -> str:
        return clean_phone(value)

    def validate_max_mps(self, value: float) -> float:
        if value < 0 or value > 10000:
            raise serializers.ValidationError("Give 0 (no limit) up to 10000 messages per second.")
        return value

    def validate(self, attrs):
        user = attrs.get("user", getattr(self.instance, "user", None))
        number = attrs.get("number", getattr(self.instance, "number", None))
        taken = AuthorizedSender.objects.filter(user=user, number=number)
        if self.instance is not None:
            taken = taken.exclude(pk=self.instance.pk)
        if taken.exists():
            raise serializers.ValidationError({"number": ["This user already holds a grant for this number."]})
        return attrs
