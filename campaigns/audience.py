"""Who a campaign reaches: the distinct opted-in members of its lists. Stated here once.

Launch (set-based SQL), the composer's count and preview, and the API's preview all
use this queryset. Archived lists cannot be chosen for a campaign (launch refuses
them), so they are not filtered here.
"""

from __future__ import annotations

from datetime import datetime

from django.db.models import Count, Exists, OuterRef, QuerySet
from django.db.models.functions import Left

from recipients.models import ConsentStatus, Membership, Recipient
from smsportal.phone import country_of_prefix


def _members(*, list_ids: list[int], after: int = 0, members_since: datetime | None = None) -> QuerySet[Recipient]:
    member = Membership.objects.filter(recipient_id=OuterRef("pk"), recipient_list_id__in=list_ids)
    if members_since is not None:
        member = member.filter(added_at__lte=members_since)
    people = Recipient.objects.all()
    if after:
        # Bound both sides: PostgreSQL does not carry the bound into the EXISTS, and a merge join
        # would read every membership before the cursor again, on each chunk.
        member = member.filter(recipient_id__gt=after)
        people = people.filter(pk__gt=after)
    return people.filter(Exists(member))


def audience(*, list_ids: list[int], after: int = 0, members_since: datetime | None = None) -> QuerySet[Recipient]:
    """The opted-in members; ``after``: only those with a larger recipient id (launch's cursor);
    ``members_since``: only memberships that existed then (a running campaign's audience is the lists
    as they were when it started; consent is still read when each row is made)."""
    return _members(list_ids=list_ids, after=after, members_since=members_since).filter(
        consent_status=ConsentStatus.OPTED_IN
    )


def audience_as_of(*, launched_at: datetime | None, send_at: datetime | None) -> datetime | None:
    """When a campaign's lists are read: when it started sending (its launch, or its scheduled time)."""
    if launched_at is None:
        return None
    return max(launched_at, send_at) if send_at else launched_at


def members_by_consent(*, list_ids: list[int]) -> dict[str, int]:
    """The distinct members of the lists by consent status: {"pending": n, "opted_in": n, "opted_out": n, "total": n}."""
    counts = dict.fromkeys(ConsentStatus.values, 0)
    if list_ids:
        rows = _members(list_ids=list_ids).values_list("consent_status").annotate(n=Count("id")).order_by()
        for status, n in rows:
            counts[status] = n
    counts["total"] = sum(counts.values())
    return counts


def nobody_reachable_reason(*, list_ids: list[int]) -> str | None:
    """Why a campaign to these lists would reach nobody (launch refuses it), or None if someone is opted in."""
    if not list_ids:
        return None  # "Choose at least one recipient list." is launch's own message.
    if audience(list_ids=list_ids).exists():
        return None  # someone is reachable: no need to count a million members (launch asks this)
    counts = members_by_consent(list_ids=list_ids)
    total, pending, opted_out = counts["total"], counts[ConsentStatus.PENDING], counts[ConsentStatus.OPTED_OUT]
    if counts[ConsentStatus.OPTED_IN]:
        return None
    if not total:
        return "The chosen lists are empty: nobody would get this campaign."
    people = f"{total:,} member{'s' if total != 1 else ''}"
    if opted_out == total:
        return f"All {people} of the chosen lists have opted out: nobody would get this campaign."
    return (
        f"Nobody has opted in: none of the {people} of the chosen lists has ({pending:,} pending, "
        f"{opted_out:,} opted out), and only opted-in people get campaigns."
    )


def audience_count(*, list_ids: list[int]) -> int:
    """What launch would create now."""
    return audience(list_ids=list_ids).count() if list_ids else 0


def audience_sample(*, list_ids: list[int]) -> Recipient | None:
    """A recipient to preview personalization with: the first opted-in member."""
    return audience(list_ids=list_ids).order_by("id").first() if list_ids else None


def audience_by_country(*, list_ids: list[int]) -> dict[str, int]:
    """The audience counted per country (ISO code), for cost estimates.

    Grouped by the number's first digits in SQL (a few hundred groups at most), then each
    prefix's calling code is named in Python. A calling code shared by several countries
    (+1: US, Canada, the Caribbean) counts as its main country, so the estimate uses its rate.
    """
    if not list_ids:
        return {}
    rows = audience(list_ids=list_ids).annotate(prefix=Left("phone", 4)).values_list("prefix").annotate(n=Count("id"))
    result: dict[str, int] = {}
    for prefix, n in rows.order_by():
        country = country_of_prefix(prefix)
        result[country] = result.get(country, 0) + n
    return result
