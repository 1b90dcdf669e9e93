"""Who a campaign reaches: the distinct opted-in members of its lists. Stated here once.

Launch (set-based SQL), the composer's count and preview, and the API's preview all
use this queryset. Archived lists cannot be chosen for a campaign (launch refuses
them), so they are not filtered here.
"""

from __future__ import annotations

from django.db.models import Exists, OuterRef, QuerySet

from recipients.models import ConsentStatus, Membership, Recipient


def audience(*, list_ids: list[int]) -> QuerySet[Recipient]:
    member = Membership.objects.filter(recipient_id=OuterRef("pk"), recipient_list_id__in=list_ids)
    return Recipient.objects.filter(consent_status=ConsentStatus.OPTED_IN).filter(Exists(member))


def audience_count(*, list_ids: list[int]) -> int:
    """What launch would create now."""
    return audience(list_ids=list_ids).count() if list_ids else 0


def audience_sample(*, list_ids: list[int]) -> Recipient | None:
    """A recipient to preview personalization with: the first opted-in member."""
    return audience(list_ids=list_ids).order_by("id").first() if list_ids else None
