"""Input validation for the accounts pages; the services do the writing."""

from __future__ import annotations

from datetime import datetime, time
from typing import Any

from allauth.account.adapter import get_adapter
from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.utils import timezone

from accounts.models import User
from providers import registry as sms_providers


class SenderForm(forms.Form):
    user = forms.ModelChoiceField(queryset=User.objects.filter(is_active=True).order_by("username"))
    number = forms.CharField(max_length=32, help_text="E.164 preferred, e.g. +14155550100")
    provider = forms.ChoiceField(choices=sms_providers.choices)
    label = forms.CharField(max_length=100, required=False)
    max_mps = forms.FloatField(min_value=0, initial=1.0, help_text="Messages per second; 0 = unlimited")
    is_active = forms.BooleanField(required=False, initial=True)


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100)
    expires_on = forms.DateField(
        required=False, help_text="Optional, YYYY-MM-DD; the token stops working at the end of that day."
    )
    user = forms.ModelChoiceField(
        queryset=User.objects.filter(is_active=True, is_approved=True).order_by("username"), required=False
    )

    def __init__(self, *args: Any, is_admin: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not is_admin:
            del self.fields["user"]

    def expires_at(self) -> datetime | None:
        day = self.cleaned_data.get("expires_on")
        if day is None:
            return None
        return timezone.make_aware(datetime.combine(day, time.max))


class InviteForm(forms.Form):
    email = forms.EmailField()
    username = forms.CharField(max_length=150, required=False, help_text="Defaults to the email address.")
    role = forms.ChoiceField(choices=User.Role.choices, initial=User.Role.VIEWER)


class UserEditForm(forms.Form):
    role = forms.ChoiceField(choices=User.Role.choices)
    is_approved = forms.BooleanField(required=False)
    is_active = forms.BooleanField(required=False)


class AdminLoginForm(AdminAuthenticationForm):
    """/admin/login/ under the same limit on password guessing as the main sign-in page.

    It authenticates through allauth's adapter, as the main page does, so both count
    failures in the same buckets (ACCOUNT_RATE_LIMITS "login_failed": per client address
    and per username) and both refuse once either is full, even the right password.
    """

    def clean(self) -> dict[str, Any]:
        username = self.cleaned_data.get("username")
        password = self.cleaned_data.get("password")
        if username is not None and password:
            # Raises ValidationError("Too many failed login attempts...") once the limit is reached.
            self.user_cache = get_adapter(self.request).authenticate(self.request, username=username, password=password)
            if self.user_cache is None:
                raise self.get_invalid_login_error()
            self.confirm_login_allowed(self.user_cache)
        return self.cleaned_data
