from __future__ import annotations

import contextlib

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts.admin_visibility import staff_visible
from accounts.permissions import has_role, signed_in_user
from recipients.models import (
    ConsentEvent,
    ImportJob,
    ImportRowError,
    InboundMessage,
    Membership,
    Recipient,
    RecipientList,
    Suppression,
    suppression_key,
)
from recipients.selectors import inbound_visible_to, recipient_lists_visible_to
from recipients.services import (
    RecipientConflict,
    recipient_consent_override,
    recipient_create,
    recipient_delete,
    recipient_list_add_members,
    recipient_list_remove_members,
    recipient_update,
    recipients_bulk_opt_out,
)
from smsportal.phone import InvalidNumber, normalize


class RecipientActionForm(ActionForm):
    recipient_list = forms.ModelChoiceField(
        queryset=RecipientList.objects.filter(is_archived=False), required=False, label="List"
    )
    reason = forms.CharField(required=False, max_length=2000, label="Override reason")


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    raw_id_fields = ["recipient_list"]
    readonly_fields = ["added_at"]

    def has_change_permission(self, request: HttpRequest, obj: Recipient | None = None) -> bool:
        """A membership is added or removed, never moved (RecipientAdmin.save_formset)."""
        return False


def _save_memberships(formset) -> None:
    """The inline's adds and removals through the list services, like the list page and the API.
    Fills the lists Django's change message reads (``new_objects``, ``deleted_objects``)."""
    formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
    for form in formset.initial_forms:
        if form in formset.deleted_forms and form.instance.pk:
            membership = form.instance
            recipient_list_remove_members(
                recipient_list=membership.recipient_list, recipient_ids=[membership.recipient_id]
            )
            formset.deleted_objects.append(membership)
    for form in formset.extra_forms:
        chosen = form.cleaned_data.get("recipient_list") if form.has_changed() else None
        if chosen is not None and form not in formset.deleted_forms:
            recipient_list_add_members(recipient_list=chosen, recipient_ids=[formset.instance.pk])
            formset.new_objects.append(Membership.objects.get(recipient_list=chosen, recipient=formset.instance))


class ConsentEventInline(admin.TabularInline):
    model = ConsentEvent
    extra = 0
    can_delete = False
    readonly_fields = [
        "created_at",
        "from_status",
        "to_status",
        "channel",
        "actor",
        "actor_description",
        "evidence",
    ]
    fields = tuple(readonly_fields)

    def has_add_permission(self, request: HttpRequest, obj: Recipient | None = None) -> bool:
        return False


@admin.register(Recipient)
class RecipientAdmin(admin.ModelAdmin):
    list_display = [
        "phone",
        "first_name",
        "last_name",
        "consent_status",
        "opted_in_at",
        "opted_out_at",
    ]
    list_filter = ["consent_status", "lists"]
    search_fields = ["phone", "first_name", "last_name"]
    readonly_fields = ["consent_status", "opted_in_at", "opted_out_at", "confirmation_sent_at"]
    inlines = [MembershipInline, ConsentEventInline]
    show_full_result_count = False
    action_form = RecipientActionForm
    actions = ["opt_out", "add_to_list", "consent_override"]

    def get_readonly_fields(self, request, obj=None):
        # Consent belongs to a number: a different number is a new recipient (recipient_update).
        readonly = list(super().get_readonly_fields(request, obj))
        return [*readonly, "phone"] if obj is not None else readonly

    def save_model(self, request, obj, form, change):
        """Through the recipients' upsert (recipients/upsert.py), like imports and the API."""
        fields = {
            name: form.cleaned_data[name]
            for name in ("first_name", "last_name", "attributes")
            if name in form.cleaned_data
        }
        if change:
            saved = recipient_update(recipient=obj, actor=request.user, **fields)
        else:
            saved = recipient_create(phone=obj.phone, actor=request.user, channel=ConsentEvent.Channel.ADMIN, **fields)
        obj.pk = saved.pk
        obj.refresh_from_db()

    def save_formset(self, request, form, formset, change):
        if formset.model is Membership:
            _save_memberships(formset)
        else:
            super().save_formset(request, form, formset, change)

    def delete_model(self, request: HttpRequest, obj: Recipient) -> None:
        """Through the service: an opted-out number goes on the suppression list."""
        recipient_delete(recipient=obj, actor=signed_in_user(request))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Recipient]) -> None:
        for recipient in queryset:
            recipient_delete(recipient=recipient, actor=signed_in_user(request))

    def get_deleted_objects(self, objs, request):
        """The consent history goes with the recipient (its opt-out lives on in the suppression list):
        the read-only ConsentEvent admin must not block the delete."""
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        return deleted, counts, perms_needed - {str(ConsentEvent._meta.verbose_name)}, protected

    def has_override_permission(self, request: HttpRequest) -> bool:
        """The consent override is the admin role's alone (the service checks again)."""
        return has_role(request.user, "admin")

    def get_search_results(self, request, queryset, search_term):
        # A number typed in any format (e.g. "(415) 555-2671") finds its E.164 row.
        results, distinct = super().get_search_results(request, queryset, search_term)
        with contextlib.suppress(InvalidNumber):
            results |= queryset.filter(phone=normalize(search_term))
        return results, distinct

    @admin.action(description="Opt out (records a consent event for each)")
    def opt_out(self, request: HttpRequest, queryset: QuerySet[Recipient]) -> None:
        changed = recipients_bulk_opt_out(
            recipient_ids=queryset.values_list("pk", flat=True),
            channel=ConsentEvent.Channel.ADMIN,
            evidence="bulk opt-out in the Django admin",
            actor=signed_in_user(request),
        )
        self.message_user(request, f"{changed} recipient(s) opted out.")

    @admin.action(
        description="Override an opt-out (admins only; needs the reason typed below)", permissions=["override"]
    )
    def consent_override(self, request: HttpRequest, queryset: QuerySet[Recipient]) -> None:
        reason = request.POST.get("reason", "").strip()
        if not reason:
            self.message_user(request, "Type the reason for the override.", level=messages.ERROR)
            return
        done, refused = 0, 0
        for recipient in queryset:
            try:
                recipient_consent_override(recipient=recipient, actor=signed_in_user(request), reason=reason)
            except (RecipientConflict, ValidationError, PermissionDenied):
                refused += 1
            else:
                done += 1
        self.message_user(request, f"{done} opt-out(s) overridden.")
        if refused:
            self.message_user(
                request, f"{refused} recipient(s) were not opted out; nothing changed for them.", level=messages.WARNING
            )

    @admin.action(description="Add to the list chosen below")
    def add_to_list(self, request: HttpRequest, queryset: QuerySet[Recipient]) -> None:
        list_id = request.POST.get("recipient_list", "")
        recipient_list = (
            RecipientList.objects.filter(pk=int(list_id), is_archived=False).first() if list_id.isdigit() else None
        )
        if recipient_list is None:
            self.message_user(request, "Choose a list to add them to.", level=messages.ERROR)
            return
        added = recipient_list_add_members(
            recipient_list=recipient_list, recipient_ids=queryset.values_list("pk", flat=True)
        )
        self.message_user(request, f"{added} recipient(s) added to {recipient_list}.")


@admin.register(RecipientList)
class RecipientListAdmin(admin.ModelAdmin):
    def get_queryset(self, request: HttpRequest) -> QuerySet[RecipientList]:
        """Staff see what the portal's visibility rule lets them see (the same selector as pages and API)."""
        return staff_visible(request, super().get_queryset(request), recipient_lists_visible_to)

    list_display = ["name", "is_archived", "created_at"]
    list_filter = ["is_archived"]
    search_fields = ["name"]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    """Adds and removals go through the list services; a membership is never edited in place."""

    list_display = ["recipient_list", "recipient", "added_at"]
    raw_id_fields = ["recipient", "recipient_list"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Membership]:
        lists = staff_visible(request, RecipientList.objects.all(), recipient_lists_visible_to)
        return super().get_queryset(request).filter(recipient_list__in=lists)

    def has_change_permission(self, request: HttpRequest, obj: Membership | None = None) -> bool:
        return False

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "recipient_list":
            kwargs["queryset"] = staff_visible(request, RecipientList.objects.all(), recipient_lists_visible_to)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request, obj, form, change):
        recipient_list_add_members(recipient_list=obj.recipient_list, recipient_ids=[obj.recipient_id])
        obj.pk = Membership.objects.get(recipient_list=obj.recipient_list, recipient_id=obj.recipient_id).pk

    def delete_model(self, request: HttpRequest, obj: Membership) -> None:
        recipient_list_remove_members(recipient_list=obj.recipient_list, recipient_ids=[obj.recipient_id])

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Membership]) -> None:
        for membership in queryset.select_related("recipient_list"):
            self.delete_model(request, membership)


@admin.register(ConsentEvent)
class ConsentEventAdmin(admin.ModelAdmin):
    list_display = ["recipient", "from_status", "to_status", "channel", "actor", "created_at"]
    list_filter = ["channel", "to_status"]
    raw_id_fields = ["recipient"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # consent changes go through the recipient's page (its override), which records them

    def has_change_permission(self, request: HttpRequest, obj: ConsentEvent | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: ConsentEvent | None = None) -> bool:
        return False


@admin.register(Suppression)
class SuppressionAdmin(admin.ModelAdmin):
    """Numbers that opted out and whose recipient was deleted (written by recipient_delete only)."""

    list_display = ["phone_hash", "reason", "created_at"]
    readonly_fields = ["phone_hash", "reason", "evidence", "created_at"]
    search_fields = ["phone_hash"]
    search_help_text = "Search by phone number (E.164): it is hashed and compared, as the rows hold no numbers."

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str) -> tuple[QuerySet, bool]:
        term = search_term.strip()
        return (queryset.filter(phone_hash=suppression_key(term)) if term else queryset), False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Suppression | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Suppression | None = None) -> bool:
        return False  # it is the opt-out itself; only the person's START (on a new recipient) ends it


@admin.register(InboundMessage)
class InboundMessageAdmin(admin.ModelAdmin):
    def get_queryset(self, request: HttpRequest) -> QuerySet[InboundMessage]:
        """Staff see what the portal's visibility rule lets them see (the same selector as pages and API)."""
        return staff_visible(request, super().get_queryset(request), inbound_visible_to)

    list_display = ["received_at", "sender", "to", "kind", "text"]
    list_filter = ["kind", "provider"]
    search_fields = ["sender", "text"]


class ImportRowErrorInline(admin.TabularInline):
    model = ImportRowError
    extra = 0
    can_delete = False
    readonly_fields = ["row_number", "phone", "reason", "raw"]
    fields = tuple(readonly_fields)
    max_num = 0

    def get_queryset(self, request: HttpRequest) -> QuerySet[ImportRowError]:
        return super().get_queryset(request).order_by("row_number")


@admin.register(ImportJob)
class ImportJobAdmin(admin.ModelAdmin):
    list_display = ["id", "original_name", "recipient_list", "status", "processed_rows", "rejected_count", "created_at"]
    list_filter = ["status"]
    readonly_fields = [f.name for f in ImportJob._meta.fields]
    inlines = [ImportRowErrorInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(ImportRowError)
class ImportRowErrorAdmin(admin.ModelAdmin):
    """Rejected import rows, read-only: they are the per-row report of an import."""

    list_display = ["job", "row_number", "phone", "reason"]
    list_filter = ["job"]
    search_fields = ["phone", "reason"]
    raw_id_fields = ["job"]
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: ImportRowError | None = None) -> bool:
        return False
