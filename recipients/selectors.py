"""Reads for recipients."""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser
from django.db import connection
from django.db.models import Count, Q, QuerySet

from accounts.models import User
from accounts.permissions import has_role, reads_everything
from recipients.models import (
    ConsentEvent,
    ConsentStatus,
    ImportJob,
    ImportRowError,
    InboundMessage,
    Recipient,
    RecipientList,
)

# --- Who sees what (one rule per object; web pages, API, admin and exports all use these) -----------


def recipient_lists_visible_to(*, user: User | AnonymousUser) -> QuerySet[RecipientList]:
    """Admins and viewers see every list. A sender sees the lists they created and the shared ones: lists
    nobody in particular owns (made by an admin, or before lists had owners). Another sender's list is
    a 404 for them, to read and to change."""
    lists = RecipientList.objects.all()
    if reads_everything(user):
        return lists
    if not has_role(user, "viewer") or not isinstance(user, User):
        return lists.none()
    return lists.filter(
        Q(created_by=user)
        | Q(created_by__isnull=True)
        | Q(created_by__role=User.Role.ADMIN)
        | Q(created_by__is_superuser=True)
    )


def recipient_lists_manageable_by(*, user: User | AnonymousUser) -> QuerySet[RecipientList]:
    """The lists ``user`` may rename and archive: admins every list, a sender only the lists they
    created. A shared list is another's to manage: a sender uses it (targets it, adds people to it)
    but renaming or archiving it would take it from everyone's composer."""
    lists = recipient_lists_visible_to(user=user)
    if has_role(user, "admin"):
        return lists
    if not has_role(user, "sender") or not isinstance(user, User):
        return lists.none()
    return lists.filter(created_by=user)


def recipients_visible_to(*, user: User | AnonymousUser) -> QuerySet[Recipient]:
    """Recipients are shared by the portal (one row per number, in any number of lists): every approved
    person sees them. Their messages and lists follow their own rules."""
    return Recipient.objects.all() if has_role(user, "viewer") else Recipient.objects.none()


def inbound_visible_to(*, user: User | AnonymousUser) -> QuerySet[InboundMessage]:
    """Messages people sent us: admins and viewers see all; a sender those sent to numbers they hold."""
    qs = InboundMessage.objects.all()
    if reads_everything(user):
        return qs
    if not has_role(user, "viewer") or not isinstance(user, User):
        return qs.none()
    return qs.filter(to__in=user.sender_grants.values_list("number", flat=True))


def attribute_keys_for_lists(*, list_ids: list[int], sample: int = 1000) -> set[str]:
    """Attribute names seen on members of the lists (a sample, to keep it cheap)."""
    if not list_ids:
        return set()
    marks = ", ".join(["%s"] * len(list_ids))
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT jsonb_object_keys(r.attributes) FROM recipients_recipient r "
            f"WHERE r.id IN (SELECT recipient_id FROM recipients_membership WHERE recipient_list_id IN ({marks}) LIMIT %s)",
            [*list_ids, sample],
        )
        return {row[0] for row in cursor.fetchall()}


def recipient_lists_with_counts(
    *, user: User | AnonymousUser, include_archived: bool = True
) -> QuerySet[RecipientList]:
    """The lists ``user`` sees, annotated with member counts per consent status (one GROUP BY over the
    membership join)."""
    lists = recipient_lists_visible_to(user=user)
    if not include_archived:
        lists = lists.filter(is_archived=False)
    return lists.annotate(
        member_count=Count("memberships"),
        opted_in_count=Count("memberships", filter=Q(memberships__recipient__consent_status=ConsentStatus.OPTED_IN)),
        pending_count=Count("memberships", filter=Q(memberships__recipient__consent_status=ConsentStatus.PENDING)),
        opted_out_count=Count("memberships", filter=Q(memberships__recipient__consent_status=ConsentStatus.OPTED_OUT)),
    )


def recipient_list_consent_counts(*, recipient_list: RecipientList) -> dict[str, int]:
    """{"pending": n, "opted_in": n, "opted_out": n, "total": n} for one list."""
    counts = dict.fromkeys(ConsentStatus.values, 0)
    for status, n in (
        Recipient.objects.filter(memberships__recipient_list=recipient_list)
        .values_list("consent_status")
        .annotate(n=Count("id"))
        .order_by()
    ):
        counts[status] = n
    counts["total"] = sum(counts.values())
    return counts


def recipient_list_members(
    *, recipient_list: RecipientList, search: str = "", consent: str = ""
) -> QuerySet[Recipient]:
    members = Recipient.objects.filter(memberships__recipient_list=recipient_list)
    if consent in ConsentStatus.values:
        members = members.filter(consent_status=consent)
    if search:
        members = members.filter(
            Q(phone__contains=search) | Q(first_name__icontains=search) | Q(last_name__icontains=search)
        )
    return members.order_by("id")


def recipient_consent_history(*, recipient: Recipient) -> QuerySet[ConsentEvent]:
    return recipient.consent_events.select_related("actor").order_by("-created_at", "-id")


def consent_events_for_export(*, recipient_list: RecipientList | None = None) -> QuerySet[ConsentEvent]:
    events = ConsentEvent.objects.select_related("recipient", "actor").order_by("id")
    if recipient_list is not None:
        events = events.filter(recipient__memberships__recipient_list=recipient_list)
    return events


def recipient_lists_importable_by(*, user: User) -> QuerySet[RecipientList]:
    """The lists ``user`` may import into (web page and API alike): the lists they see; roles are
    checked by the views."""
    return recipient_lists_visible_to(user=user)


def import_jobs_visible_to(*, user: User) -> QuerySet[ImportJob]:
    """Imports ``user`` may see (and, with the sender role, map and start): those into lists they may
    import into, those into no list (the command line's, or a deleted list's), and their own."""
    lists = recipient_lists_importable_by(user=user)
    into = Q(recipient_list__in=lists) | Q(recipient_list__isnull=True) | Q(created_by=user)
    return ImportJob.objects.filter(into).select_related("recipient_list", "created_by")


def import_job_errors(*, job: ImportJob) -> QuerySet[ImportRowError]:
    return job.row_errors.order_by("row_number", "id")


def inbox_page(
    *, user: User | AnonymousUser, query: str = "", kind: str = "", before: int = 0, size: int = 50
) -> tuple[list[InboundMessage], int | None]:
    """One page of the inbox, newest first (keyset on id, no COUNT).

    ``query`` matches the text, or the sender's or our number when it has three digits or more;
    ``kind`` is one of ``InboundMessage.Kind`` (anything else means every kind). Returns the rows
    and the id to continue before, or None on the last page.
    """
    qs = inbound_visible_to(user=user).select_related("recipient").order_by("-id")
    if kind in InboundMessage.Kind.values:
        qs = qs.filter(kind=kind)
    query = query.strip()
    if query:
        digits = "".join(ch for ch in query if ch.isdigit())
        cond = Q(text__icontains=query)
        if len(digits) >= 3:
            cond |= Q(sender__contains=digits) | Q(to__contains=digits)
        qs = qs.filter(cond)
    if before:
        qs = qs.filter(id__lt=before)
    rows = list(qs[: size + 1])
    next_before = rows[size - 1].id if len(rows) > size else None
    return rows[:size], next_before
