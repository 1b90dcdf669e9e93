from __future__ import annotations

from rest_framework import serializers

from accounts.models import ApiToken, TokenScope, User

MAX_EXPIRY_DAYS = 3650


class ApiTokenSerializer(serializers.ModelSerializer):
    """A token as listed: never its secret (only its first characters, ``smsp_<prefix>_…``)."""

    user = serializers.PrimaryKeyRelatedField[User](read_only=True)
    username = serializers.CharField(source="user.username", read_only=True)
    scopes = serializers.ListField(child=serializers.ChoiceField(choices=TokenScope.choices), read_only=True)
    active = serializers.SerializerMethodField()

    class Meta:
        model = ApiToken
        fields = [
            "id",
            "name",
            "user",
            "username",
            "prefix",
            "scopes",
            "created_at",
            "last_used_at",
            "expires_at",
            "revoked_at",
            "active",
        ]
        read_only_fields = fields

    def get_active(self, token: ApiToken) -> bool:
        """Not revoked and not expired: it authenticates."""
        from django.utils import timezone

        return token.revoked_at is None and (token.expires_at is None or token.expires_at > timezone.now())


class ApiTokenCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100, help_text="What uses it, e.g. 'CRM sync'")
    scopes = serializers.ListField(
        child=serializers.ChoiceField(choices=TokenScope.choices),
        min_length=1,
        max_length=len(TokenScope.values),
        help_text="read (read-only), send, manage-recipients, manage-settings; every token may read",
    )
    expires_at = serializers.DateTimeField(required=False, allow_null=True, help_text="Default null: never")
    expires_in_days = serializers.IntegerField(
        required=False, min_value=1, max_value=MAX_EXPIRY_DAYS, help_text="Instead of expires_at"
    )
    user = serializers.PrimaryKeyRelatedField[User](
        queryset=User.objects.filter(is_active=True, is_approved=True),
        required=False,
        help_text="Whose token (admins only); default: yours",
    )

    def validate(self, attrs: dict) -> dict:
        if attrs.get("expires_at") and attrs.get("expires_in_days"):
            raise serializers.ValidationError({"expires_in_days": ["Give expires_at or expires_in_days, not both."]})
        return attrs


class ApiTokenCreatedSerializer(ApiTokenSerializer):
    token = serializers.CharField(help_text="The token itself. Shown only in this response: store it now")

    class Meta(ApiTokenSerializer.Meta):
        fields = [*ApiTokenSerializer.Meta.fields, "token"]
        read_only_fields = fields
