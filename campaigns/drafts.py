"""Writes for campaign drafts: create, edit and delete, before launch (campaigns/services.py does the rest).

"Draft only" is checked on the row locked for the write (``SELECT ... FOR UPDATE``), in the
transaction that writes, so a launch and an edit (or a delete) of the same campaign are
serialized: whichever locks the row second sees the first one's result. A launch that
wins makes the edit a TransitionError and changes nothing; an edit that wins is what the
launch then validates and sends (``campaign_launch`` locks the row too).
"""

from __future__ import annotations

from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from accounts.models import User
from campaigns.models import Campaign
from campaigns.services import TransitionError, _audit
from recipients.selectors import recipient_lists_visible_to

DRAFT_FIELDS = (
    "name",
    "body",
    "media_urls",
    "add_stop_footer",
    "smart_encoding",
    "send_at",
    "send_window_start",
    "send_window_end",
    "max_spend_micros",
    "track_links",
    "valid_until",
)


def _visible_lists(user, lists: Iterable) -> list:
    """The lists, if ``user`` may see each one (a sender may not target another sender's list)."""
    lists = list(lists)
    if isinstance(user, User) and lists:
        visible = set(
            recipient_lists_visible_to(user=user).filter(pk__in=[lst.pk for lst in lists]).values_list("pk", flat=True)
        )
        if any(lst.pk not in visible for lst in lists):
            raise ValidationError({"lists": "You can only target your own lists and shared ones."})
    return lists


def _lock_draft(campaign: Campaign, *, refusal: str) -> Campaign:
    """The campaign's row, locked until the transaction ends; TransitionError unless it is still a draft."""
    locked = Campaign.objects.select_for_update().filter(pk=campaign.pk).first()
    if locked is None:
        raise Campaign.DoesNotExist(f"Campaign {campaign.pk} no longer exists.")
    if locked.status != Campaign.Status.DRAFT:
        raise TransitionError(refusal)
    return locked


def campaign_create_draft(*, user, senders: Iterable = (), lists: Iterable = (), **fields) -> Campaign:
    """A new draft owned by ``user``. Fields are checked in full only at launch."""
    lists = _visible_lists(user, lists)
    with transaction.atomic():
        campaign = Campaign.objects.create(created_by=user, **{k: v for k, v in fields.items() if k in DRAFT_FIELDS})
        campaign.senders.set(list(senders))
        campaign.lists.set(list(lists))
        _audit(user, "campaign.create", campaign)
    return campaign


def campaign_update_draft(
    *, campaign: Campaign, user, senders: Iterable | None = None, lists: Iterable | None = None, **fields
) -> Campaign:
    """Edit a draft: the fields given, and ``senders`` / ``lists`` unless None (then they are kept).

    Once launched, a campaign's content is fixed: TransitionError, and nothing is written.
    """
    values = {k: v for k, v in fields.items() if k in DRAFT_FIELDS}
    if lists is not None:
        lists = _visible_lists(user, lists)
    with transaction.atomic():
        _lock_draft(campaign, refusal="Only a draft campaign can be edited.")
        Campaign.objects.filter(pk=campaign.pk).update(updated_at=timezone.now(), **values)
        if senders is not None:
            campaign.senders.set(list(senders))
        if lists is not None:
            campaign.lists.set(list(lists))
        campaign.refresh_from_db()
        changed = sorted(
            [*values, *(["senders"] if senders is not None else []), *(["lists"] if lists is not None else [])]
        )
        _audit(user, "campaign.edit", campaign, ", ".join(changed))
    return campaign


def campaign_delete_draft(*, campaign: Campaign, user) -> None:
    """Delete a draft (a launched campaign is cancelled instead: TransitionError)."""
    with transaction.atomic():
        locked = _lock_draft(campaign, refusal="Only a draft campaign can be deleted; cancel it instead.")
        _audit(user, "campaign.delete", locked)
        locked.delete()
