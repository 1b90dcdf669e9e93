from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django import forms
from django.core.files.uploadedfile import UploadedFile

from accounts.models import AuthorizedSender
from recipients.uploads import upload_cap_bytes, upload_cap_message
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
        if (upload.size or 0) > upload_cap_bytes():  # size: None only for no file
            raise forms.ValidationError(upload_cap_message())
        return upload


class ConfirmationForm(forms.Form):
    sender = forms.ChoiceField(label="Send from")

    def __init__(self, *args: Any, senders: Iterable[AuthorizedSender] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        form_field(self, "sender", forms.ChoiceField).choices = [(str(s.pk), str(s)) for s in senders]
