from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django import forms
from django.conf import settings
from django.core.files.uploadedfile import UploadedFile

from accounts.models import AuthorizedSender
from smsportal.forms import form_field


class ListForm(forms.Form):
    name = forms.CharField(max_length=200)
    description = forms.CharField(widget=forms.Textarea, required=False)


class RenameForm(forms.Form):
    name = forms.CharField(max_length=200)


class AddMemberForm(forms.Form):
    phone = forms.CharField(max_length=40)
    first_name = forms.CharField(max_length=100, required=False)
    last_name = forms.CharField(max_length=100, required=False)


class ImportForm(forms.Form):
    file = forms.FileField(help_text="CSV with a header row naming a phone column")
    region = forms.CharField(max_length=2, required=False, help_text="For numbers without +country, e.g. US")
    consent_column = forms.CharField(max_length=100, required=False, help_text="Default: a column named consent")

    def clean_file(self) -> UploadedFile:
        upload: UploadedFile = self.cleaned_data["file"]
        if (upload.size or 0) > settings.SMS_IMPORT_MAX_UPLOAD_MB * 1024 * 1024:  # size: None only for no file
            raise forms.ValidationError(f"The file is larger than {settings.SMS_IMPORT_MAX_UPLOAD_MB} MB.")
        return upload


class ConfirmationForm(forms.Form):
    sender = forms.ChoiceField(label="Send from")

    def __init__(self, *args: Any, senders: Iterable[AuthorizedSender] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        form_field(self, "sender", forms.ChoiceField).choices = [(str(s.pk), str(s)) for s in senders]


class InboxReplyForm(forms.Form):
    body = forms.CharField(
        label="Your reply",
        widget=forms.Textarea(attrs={"rows": 4}),
        max_length=1600,
        help_text="Sent once, from the number they wrote to. Refused if they have opted out.",
    )
