"""Django admin for event webhooks: register endpoints, see every attempt, resend, re-enable.

A disabled endpoint is announced at the top of the endpoint pages until an admin enables it again.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse

from accounts.permissions import signed_in_user
from events import services
from events.models import DeliveryAttempt, EventType, OutboxEvent, WebhookEndpoint
from events.selectors import pending_count


class EndpointForm(forms.ModelForm):
    url = forms.URLField(max_length=500, assume_scheme="https", help_text="Where events are POSTed")
    event_types = forms.MultipleChoiceField(
        choices=EventType.choices,
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text="None ticked: every event",
    )

    class Meta:
        model = WebhookEndpoint
        fields = ["url", "description", "event_types", "is_active"]


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    form = EndpointForm
    list_display = ["__str__", "url", "is_active", "failure_count", "disabled_reason", "waiting"]
    readonly_fields = ["secret", "disabled_at", "disabled_reason", "failure_count", "retry_at", "created_at"]
    actions = ["enable", "rotate_secret"]

    @admin.display(description="events waiting")
    def waiting(self, obj: WebhookEndpoint) -> int:
        return pending_count(endpoint=obj)

    def _announce_disabled(self, request: HttpRequest) -> None:
        for endpoint in WebhookEndpoint.objects.filter(is_active=False, disabled_at__isnull=False).exclude(
            disabled_reason__startswith="disabled by"
        ):
            messages.error(
                request,
                f"Webhook endpoint {endpoint} was disabled automatically on {endpoint.disabled_at:%Y-%m-%d %H:%M}: "
                f"{endpoint.disabled_reason}. {pending_count(endpoint=endpoint)} events wait for it; fix the "
                "receiver, then enable it again (action 'Enable') to deliver them in order.",
            )

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        self._announce_disabled(request)
        return super().changelist_view(request, extra_context)

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context=None) -> HttpResponse:
        if request.method == "GET":
            self._announce_disabled(request)
        return super().change_view(request, object_id, form_url, extra_context)

    def save_model(self, request: HttpRequest, obj: WebhookEndpoint, form: forms.ModelForm, change: bool) -> None:
        actor = signed_in_user(request)
        data = form.cleaned_data
        if change:
            services.endpoint_update(
                actor=actor,
                endpoint=WebhookEndpoint.objects.get(pk=obj.pk),
                **{k: data[k] for k in form.changed_data if k in services.ENDPOINT_FIELDS},
            )
        else:
            created = services.endpoint_create(
                actor=actor, url=data["url"], event_types=data["event_types"], description=data["description"]
            )
            obj.pk = created.pk

    def has_delete_permission(self, request: HttpRequest, obj: WebhookEndpoint | None = None) -> bool:
        return False  # disable instead: its events and attempts stay visible

    @admin.action(description="Enable (deliver what waited, in order)")
    def enable(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        for endpoint in queryset:
            services.endpoint_update(actor=signed_in_user(request), endpoint=endpoint, is_active=True)

    @admin.action(description="Rotate the signing secret")
    def rotate_secret(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        for endpoint in queryset:
            services.endpoint_rotate_secret(actor=signed_in_user(request), endpoint=endpoint)


class DeliveryAttemptInline(admin.TabularInline):
    model = DeliveryAttempt
    fields = ["attempted_at", "status_code", "succeeded", "error", "duration_ms"]
    readonly_fields = ["attempted_at", "status_code", "succeeded", "error", "duration_ms"]
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(OutboxEvent)
class OutboxEventAdmin(admin.ModelAdmin):
    """Every event and each of its delivery attempts; select events and 'Resend' to deliver them again."""

    list_display = ["id", "event_type", "endpoint", "status", "attempts", "created_at", "delivered_at", "last_error"]
    list_filter = ["status", "event_type", "endpoint"]
    readonly_fields = [
        "endpoint",
        "event_type",
        "payload",
        "status",
        "attempts",
        "created_at",
        "delivered_at",
        "last_error",
    ]
    inlines = [DeliveryAttemptInline]
    actions = ["resend"]
    show_full_result_count = False  # no COUNT(*) over millions of events

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: OutboxEvent | None = None) -> bool:
        return False

    @admin.action(description="Resend")
    def resend(self, request: HttpRequest, queryset: QuerySet[OutboxEvent]) -> None:
        count = 0
        for event in queryset.select_related("endpoint"):
            services.event_resend(actor=signed_in_user(request), event=event)
            count += 1
        self.message_user(request, f"{count} event(s) queued to be sent again.")


@admin.register(DeliveryAttempt)
class DeliveryAttemptAdmin(admin.ModelAdmin):
    list_display = ["id", "event", "attempted_at", "status_code", "succeeded", "error", "duration_ms"]
    list_filter = ["succeeded"]
    readonly_fields = ["event", "attempted_at", "status_code", "succeeded", "error", "duration_ms"]
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: DeliveryAttempt | None = None) -> bool:
        return False
