"""Writes for recipients and consent. Every consent change leaves a ConsentEvent."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from recipients.models import ConsentEvent, ConsentStatus, Recipient


def recipient_set_consent(
    *,
    recipient: Recipient,
    status: str,
    channel: str,
    actor=None,
    actor_description: str = "",
    evidence: str = "",
) -> bool:
    """Change consent under a row lock and record it. Returns False if nothing changed."""
    with transaction.atomic():
        locked = Recipient.objects.select_for_update().get(pk=recipient.pk)
        if locked.consent_status == status:
            return False
        now = timezone.now()
        fields = {"consent_status": status, "updated_at": now}
        if status == ConsentStatus.OPTED_IN:
            fields["opted_in_at"] = now
        elif status == ConsentStatus.OPTED_OUT:
            fields["opted_out_at"] = now
        Recipient.objects.filter(pk=locked.pk).update(**fields)
        ConsentEvent.objects.create(
            recipient=locked,
            from_status=locked.consent_status,
            to_status=status,
            channel=channel,
            actor=actor,
            actor_description=actor_description,
            evidence=evidence,
        )
        for key, value in fields.items():
            setattr(recipient, key, value)
    return True


def recipient_opt_out(
    *, recipient: Recipient, channel: str, evidence: str, actor=None, actor_description: str = ""
) -> bool:
    return recipient_set_consent(
        recipient=recipient,
        status=ConsentStatus.OPTED_OUT,
        channel=channel,
        actor=actor,
        actor_description=actor_description,
        evidence=evidence,
    )
