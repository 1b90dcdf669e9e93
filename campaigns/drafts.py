"""Writes for campaign drafts: create and edit, before launch (campaigns/services.py does the rest)."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction

from campaigns.models import Campaign
from campaigns.services import TransitionError, _audit

DRAFT_FIELDS = (
    "name",
    "body",
    "media_urls",
    "add_stop_footer",
    "smart_encoding",
    "send_at",
    "send_window_start",
    "send_window_end",
    "valid_until",
)


def campaign_create_draft(*, user, senders: Iterable, lists: Iterable, **fields) -> Campaign:
    """A new draft owned by ``user``. Fields are checked in full only at launch."""
    with transaction.atomic():
        campaign = Campaign.objects.create(created_by=user, **{k: v for k, v in fields.items() if k in DRAFT_FIELDS})
        campaign.senders.set(list(senders))
        campaign.lists.set(list(lists))
        _audit(user, "campaign.create", campaign)
    return campaign


def campaign_update_draft(*, campaign: Campaign, user, senders: Iterable, lists: Iterable, **fields) -> Campaign:
    """Edit a draft. Once launched, a campaign's content is fixed (TransitionError)."""
    values = {k: v for k, v in fields.items() if k in DRAFT_FIELDS}
    with transaction.atomic():
        changed = Campaign.objects.filter(pk=campaign.pk, status=Campaign.Status.DRAFT).update(**values)
        if not changed:
            raise TransitionError("Only a draft can be edited.")
        campaign.refresh_from_db()
        campaign.senders.set(list(senders))
        campaign.lists.set(list(lists))
        _audit(user, "campaign.edit", campaign)
    return campaign
