from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.models import User
from recipients.models import ConsentEvent, ConsentStatus, Recipient, RecipientList
from recipients.selectors import recipient_lists_visible_to
from recipients.upsert import RecipientRow

from .fields import VisibleListField, clean_attributes, clean_phone

MAX_BULK_ROWS = 5000


class RecipientSerializer(serializers.ModelSerializer):
    phone = serializers.CharField(max_length=32, help_text="Any common format; stored as E.164")
    attributes = serializers.JSONField(required=False, help_text="Extra fields for personalization")
    lists = VisibleListField(many=True, required=False)

    class Meta:
        model = Recipient
        fields = [
            "id",
            "phone",
            "first_name",
            "last_name",
            "attributes",
            "consent_status",
            "opted_in_at",
            "opted_out_at",
            "lists",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "consent_status", "opted_in_at", "opted_out_at", "created_at", "updated_at"]

    def validate_phone(self, value: str) -> str:
        phone = clean_phone(value)
        taken = Recipient.objects.filter(phone=phone)
        if self.instance is not None:
            taken = taken.exclude(pk=self.instance.pk)
        if taken.exists():
            raise serializers.ValidationError("A recipient with this number already exists.")
        return phone

    def validate_attributes(self, value):
        return clean_attributes(value)

    def to_representation(self, instance):
        data = super().to_representation(instance)
        if "lists" in data:
            # Only the lists the caller sees: another sender's list id is not theirs to learn.
            root = self.root  # one query per response, however many recipients it holds
            visible: set[int] | None = getattr(root, "_visible_list_ids", None)
            if visible is None:
                user = getattr(self.context.get("request"), "user", None)
                lists = recipient_lists_visible_to(user=user) if user is not None else RecipientList.objects.none()
                visible = set(lists.values_list("pk", flat=True))
                root._visible_list_ids = visible  # type: ignore[attr-defined]
            data["lists"] = [pk for pk in data["lists"] if pk in visible]
        return data


class ConsentEvidenceSerializer(serializers.Serializer):
    """How the person consented: required with ``consent: opted_in``."""

    source = serializers.CharField(  # type: ignore[assignment]  # a field named like a Field attribute; DRF's metaclass moves it
        max_length=200, help_text="Where they consented, e.g. 'signup form on example.com'"
    )
    collected_at = serializers.DateTimeField(help_text="When they consented")
    text = serializers.CharField(
        max_length=1000, required=False, allow_blank=True, help_text="The consent text they agreed to"
    )
    url = serializers.URLField(max_length=500, required=False, allow_blank=True, help_text="Or a URL showing it")

    def validate(self, attrs: dict) -> dict:
        if not (attrs.get("text") or "").strip() and not (attrs.get("url") or "").strip():
            raise serializers.ValidationError("Give the text or the URL of the consent.")
        return attrs


def evidence_text(evidence: dict) -> str:
    """The evidence as recorded on the ConsentEvent."""
    parts = [f"source {evidence['source']!r}", f"collected {evidence['collected_at'].isoformat()}"]
    if evidence.get("text"):
        parts.append(f"text {evidence['text']!r}")
    if evidence.get("url"):
        parts.append(f"url {evidence['url']}")
    return "; ".join(parts)


class RecipientRowSerializer(serializers.Serializer):
    """One row of a bulk upsert."""

    phone = serializers.CharField(max_length=32)
    first_name = serializers.CharField(max_length=100, required=False, allow_blank=True)
    last_name = serializers.CharField(max_length=100, required=False, allow_blank=True)
    attributes = serializers.JSONField(required=False)
    consent = serializers.ChoiceField(
        choices=[ConsentStatus.OPTED_IN, ConsentStatus.OPTED_OUT],
        required=False,
        help_text="Stated consent; recorded as a consent event with channel api. "
        "opted_in needs `evidence`, and never undoes an opt-out",
    )
    evidence = ConsentEvidenceSerializer(required=False, help_text="Required with consent opted_in")

    def validate(self, attrs: dict) -> dict:
        if attrs.get("consent") == ConsentStatus.OPTED_IN and not attrs.get("evidence"):
            raise serializers.ValidationError(
                {"evidence": ["opted_in needs evidence: source, collected_at, and the text or url of the consent."]}
            )
        return attrs

    def validate_phone(self, value: str) -> str:
        return clean_phone(value)

    def validate_attributes(self, value):
        return clean_attributes(value)


@extend_schema_field(RecipientRowSerializer(many=True))
class RowsField(serializers.ListField):
    """Rows are validated one by one, so one bad row does not fail the others."""

    child = serializers.JSONField()


class BulkUpsertSerializer(serializers.Serializer):
    list = VisibleListField(required=False, allow_null=True, help_text="Add every row to this list")
    recipients = RowsField(min_length=1, max_length=MAX_BULK_ROWS)


def bulk_rows(raw_rows: list) -> tuple[list[RecipientRow], list[dict]]:
    """Each row checked on its own: (the valid rows, the errors of the others).

    Row numbers are 1-based positions in ``recipients`` (the first row is 1), like the CSV import's. A number that appears earlier in the
    request is an error (the upsert takes each number once).
    """
    rows: dict[str, RecipientRow] = {}
    errors: list[dict] = []
    for index, raw in enumerate(raw_rows, start=1):
        row = RecipientRowSerializer(data=raw)
        if not row.is_valid():
            errors.append({"row": index, "errors": _flatten(row.errors)})
            continue
        data = row.validated_data
        if data["phone"] in rows:
            errors.append({"row": index, "errors": {"phone": ["This number appears earlier in the request."]}})
            continue
        rows[data["phone"]] = RecipientRow(
            index,
            data["phone"],
            data.get("first_name", ""),
            data.get("last_name", ""),
            data.get("attributes", {}),
            data.get("consent"),
            evidence_text(data["evidence"]) if data.get("evidence") else "",
        )
    return list(rows.values()), errors


def _flatten(errors) -> dict[str, list[str]]:
    return {key: [str(m) for m in (value if isinstance(value, list) else [value])] for key, value in errors.items()}


class RowErrorSerializer(serializers.Serializer):
    row = serializers.IntegerField(help_text="1-based position in `recipients`: the first row is 1")
    errors = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))  # type: ignore[assignment]  # a field named like a Serializer attribute; DRF's metaclass moves it


class BulkResultSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    failed = serializers.IntegerField(help_text="Rows refused: as many as `errors`")
    errors = RowErrorSerializer(many=True, help_text="Rows refused, and why; nothing of them was saved")  # type: ignore[assignment]  # a field named like a Serializer attribute; DRF's metaclass moves it
    warnings = RowErrorSerializer(
        many=True,
        help_text="Rows saved, but not all as asked: `opted_in` for someone who opted out keeps them opted out",
    )


class ConsentChangeSerializer(serializers.Serializer):
    evidence = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=2000,
        help_text="Required to opt in (where, when, the text or URL of the consent). "
        "An opt-out is undone only by the person's START: opt-in answers 409 consent_revoked",
    )


class ConfirmationRequestSerializer(serializers.Serializer):
    sender = serializers.CharField(
        required=False,
        allow_null=True,
        max_length=32,
        help_text="Your authorized number to send from; optional when you have exactly one",
    )


class ConsentEventSerializer(serializers.ModelSerializer):
    actor = serializers.SlugRelatedField[User](slug_field="username", read_only=True, allow_null=True)

    class Meta:
        model = ConsentEvent
        fields = ["id", "from_status", "to_status", "channel", "actor", "actor_description", "evidence", "created_at"]
        read_only_fields = fields


class RecipientFilterSerializer(serializers.Serializer):
    list = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1)
    consent_status = serializers.ChoiceField(choices=ConsentStatus.choices, required=False)
    phone = serializers.CharField(required=False, max_length=32)
