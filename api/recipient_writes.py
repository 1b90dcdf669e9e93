"""Recipient writes the API needs that recipients/services.py does not offer (yet).

Thin helpers over the models; every consent change goes through
``recipients.services.recipient_set_consent`` so it leaves a ConsentEvent.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from api.exceptions import Conflict
from api.serializers.recipients import RecipientRowSerializer
from recipients.models import ConsentEvent, ConsentStatus, Membership, Recipient, RecipientList
from recipients.services import recipient_set_consent


@dataclass
class BulkResult:
    created: int = 0
    updated: int = 0
    errors: list[dict] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return len(self.errors)


def recipient_bulk_upsert(*, rows: list, recipient_list: RecipientList | None, actor) -> BulkResult:
    """Create or update recipients by number; bad rows are reported and skipped, not fatal."""
    result = BulkResult()
    valid: dict[str, dict] = {}
    for index, raw in enumerate(rows):
        row = RecipientRowSerializer(data=raw)
        if not row.is_valid():
            result.errors.append({"row": index, "errors": _flatten(row.errors)})
            continue
        data = row.validated_data
        if data["phone"] in valid:
            result.errors.append({"row": index, "errors": {"phone": ["This number appears earlier in the request."]}})
            continue
        valid[data["phone"]] = data

    with transaction.atomic():
        existing = {r.phone: r for r in Recipient.objects.select_for_update().filter(phone__in=list(valid))}
        new = [
            Recipient(
                phone=phone,
                first_name=data.get("first_name", ""),
                last_name=data.get("last_name", ""),
                attributes=data.get("attributes", {}),
            )
            for phone, data in valid.items()
            if phone not in existing
        ]
        # A concurrent insert of the same number is skipped here and picked up by the re-read below.
        Recipient.objects.bulk_create(new, ignore_conflicts=True)
        result.created = len(new)
        changed = []
        for phone, recipient in existing.items():
            data = valid[phone]
            before = (recipient.first_name, recipient.last_name, recipient.attributes)
            recipient.first_name = data.get("first_name", recipient.first_name)
            recipient.last_name = data.get("last_name", recipient.last_name)
            if "attributes" in data:
                recipient.attributes = {**(recipient.attributes or {}), **data["attributes"]}
            if (recipient.first_name, recipient.last_name, recipient.attributes) != before:
                recipient.updated_at = timezone.now()
                changed.append(recipient)
        Recipient.objects.bulk_update(changed, ["first_name", "last_name", "attributes", "updated_at"])
        result.updated = len(existing)
        everyone = {r.phone: r for r in Recipient.objects.filter(phone__in=list(valid))}
        if recipient_list is not None:
            Membership.objects.bulk_create(
                [Membership(recipient_list=recipient_list, recipient=r) for r in everyone.values()],
                ignore_conflicts=True,
            )
        for phone, data in valid.items():
            if data.get("consent") and phone in everyone:
                recipient_set_consent(
                    recipient=everyone[phone],
                    status=data["consent"],
                    channel=ConsentEvent.Channel.API,
                    actor=actor,
                    evidence="Stated in a bulk upsert through the API",
                )
    return result


def _flatten(errors) -> dict[str, list[str]]:
    return {key: [str(m) for m in (value if isinstance(value, list) else [value])] for key, value in errors.items()}


def recipient_delete(*, recipient: Recipient) -> None:
    """Delete someone, unless they opted out: that record is what keeps us from texting them again."""
    if recipient.consent_status == ConsentStatus.OPTED_OUT:
        raise Conflict("An opted-out recipient is kept so that the opt-out is honoured if the number is added again.")
    recipient.delete()
