"""Forms for the campaign composer. They only parse input; launch rules live in campaigns/services.py."""

from __future__ import annotations

import zoneinfo
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

from django import forms
from django.conf import settings
from django.utils import timezone

from accounts.models import AuthorizedSender, User
from accounts.selectors import sender_grants_for
from campaigns.models import Campaign
from campaigns.ui_selectors import lists_for_compose
from messaging.compose import MAX_TEMPLATE_CHARS, validate_media_urls
from messaging.models import MessageStatus
from providers.status import micros
from recipients.models import RecipientList
from smsportal.forms import form_field


@lru_cache(maxsize=1)
def timezone_choices() -> list[tuple[str, str]]:
    names = sorted(zoneinfo.available_timezones() - {"localtime", "Factory"})
    return [(n, n.replace("_", " ")) for n in names]


class LocalDateTimeInput(forms.DateTimeInput):
    input_type = "datetime-local"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(format="%Y-%m-%dT%H:%M", **kwargs)


class CampaignForm(forms.Form):
    """Everything a draft holds. Times are entered in ``timezone`` and stored in UTC."""

    name = forms.CharField(max_length=200, widget=forms.TextInput(attrs={"autocomplete": "off"}))
    senders = forms.ModelMultipleChoiceField(
        queryset=AuthorizedSender.objects.none(),
        widget=forms.CheckboxSelectMultiple,
        label="Send from",
        help_text="Pick one number, or several to send from a pool (each recipient keeps the same number).",
        error_messages={"required": "Choose at least one sender number."},
    )
    lists = forms.ModelMultipleChoiceField(
        queryset=RecipientList.objects.none(),
        widget=forms.CheckboxSelectMultiple,
        label="Recipient lists",
        help_text="Only opted-in members receive the message; a person in several lists gets it once.",
        error_messages={"required": "Choose at least one recipient list."},
    )
    body = forms.CharField(
        max_length=MAX_TEMPLATE_CHARS,
        widget=forms.Textarea(attrs={"rows": 6}),
        label="Message",
        help_text='Personalize with {{ first_name }}, {{ last_name }}, {{ name }} or {{ city|default:"there" }}.',
    )
    media_urls = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "spellcheck": "false", "placeholder": "https://example.com/image.jpg"}),
        label="Media URLs (MMS)",
        help_text="One https URL per line; leave empty for SMS.",
    )
    add_stop_footer = forms.BooleanField(
        required=False, initial=True, label="Add “Reply STOP to opt out” unless the message already says how to opt out"
    )
    smart_encoding = forms.BooleanField(
        required=False,
        initial=True,
        label="Smart encoding (replace curly quotes and similar look-alikes so the message stays GSM-7)",
    )
    max_spend = forms.DecimalField(
        required=False,
        min_value=Decimal("0.000001"),
        max_value=Decimal(10**9),
        decimal_places=6,
        label=f"Maximum spend ({settings.SMS_COST_CURRENCY})",
        help_text="Optional. The campaign pauses itself before a message would take its cost over this.",
    )
    track_links = forms.BooleanField(
        required=False,
        initial=False,
        label="Track links: replace each URL with a short link per recipient and count the clicks",
    )
    timezone = forms.ChoiceField(choices=(), label="Time zone for the times below")
    send_at = forms.DateTimeField(
        required=False,
        widget=LocalDateTimeInput(),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"],
        label="Send at",
        help_text="Leave empty to send as soon as you launch.",
    )
    valid_until = forms.DateTimeField(
        required=False,
        widget=LocalDateTimeInput(),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"],
        label="Valid until",
        help_text="Messages not sent by then expire instead of arriving late.",
    )
    send_window_start = forms.TimeField(
        required=False,
        widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
        label="Send only between",
        help_text="In each recipient's local time, e.g. 08:00 and 21:00. Leave both empty to send at any hour.",
    )
    send_window_end = forms.TimeField(
        required=False, widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"), label="and"
    )

    def __init__(
        self, *args: Any, user: User, tz: str | None = None, campaign: Campaign | None = None, **kwargs: Any
    ) -> None:
        tz = tz if tz in dict(timezone_choices()) else settings.TIME_ZONE
        if campaign is not None and "initial" not in kwargs:
            zone = zoneinfo.ZoneInfo(tz)
            kwargs["initial"] = {
                "name": campaign.name,
                "senders": list(campaign.senders.all()),
                "lists": list(campaign.lists.all()),
                "body": campaign.body,
                "media_urls": "\n".join(campaign.media_urls or []),
                "add_stop_footer": campaign.add_stop_footer,
                "smart_encoding": campaign.smart_encoding,
                "track_links": campaign.track_links,
                "send_at": campaign.send_at.astimezone(zone).replace(tzinfo=None) if campaign.send_at else None,
                "valid_until": campaign.valid_until.astimezone(zone).replace(tzinfo=None)
                if campaign.valid_until
                else None,
                "send_window_start": campaign.send_window_start,
                "send_window_end": campaign.send_window_end,
                "max_spend": Decimal(campaign.max_spend_micros) / 1_000_000 if campaign.max_spend_micros else None,
            }
        kwargs.setdefault("initial", {})["timezone"] = tz
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        form_field(self, "timezone", forms.ChoiceField).choices = timezone_choices()
        # Only the numbers this person holds an active grant for.
        form_field(self, "senders", forms.ModelMultipleChoiceField).queryset = sender_grants_for(user=user)
        form_field(self, "lists", forms.ModelMultipleChoiceField).queryset = lists_for_compose(user=user)

    def clean_media_urls(self) -> list[str]:
        try:
            return validate_media_urls(self.cleaned_data.get("media_urls", "").splitlines())
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        tz = data.get("timezone")
        zone = zoneinfo.ZoneInfo(tz) if tz else timezone.get_current_timezone()
        for name in ("send_at", "valid_until"):
            value = data.get(name)
            if isinstance(value, datetime):
                # The browser sends wall-clock time, which Django made aware in the server's
                # zone; it means that wall-clock time in the chosen zone.
                data[name] = value.replace(tzinfo=zone)
        if bool(data.get("send_window_start")) != bool(data.get("send_window_end")):
            self.add_error("send_window_end", "Give both ends of the sending window, or neither.")
        return data

    def draft_fields(self) -> dict:
        data = self.cleaned_data
        return {
            k: data.get(k)
            for k in ("name", "body", "add_stop_footer", "smart_encoding", "track_links", "send_at", "valid_until")
        } | {
            "media_urls": data.get("media_urls") or [],
            "send_window_start": data.get("send_window_start"),
            "send_window_end": data.get("send_window_end"),
            "max_spend_micros": micros(data["max_spend"]) if data.get("max_spend") is not None else None,
        }


class MessageFilterForm(forms.Form):
    status = forms.ChoiceField(required=False, choices=[("", "Any status"), *MessageStatus.choices], label="Status")
    q = forms.CharField(required=False, max_length=20, label="Number")
    after = forms.IntegerField(required=False, min_value=0, max_value=2**62, widget=forms.HiddenInput)
