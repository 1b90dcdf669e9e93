from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django import forms
from django.core.files.uploadedfile import UploadedFile

from accounts.models import AuthorizedSender
from recipients.importer import ROLES
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
    file = forms.FileField(label="CSV file", help_text="A header row first; you choose the columns next")
    region = forms.CharField(max_length=2, required=False, help_text="For numbers without +country, e.g. US")

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


ATTRIBUTE, IGNORE = "attribute", "ignore"


class ImportMappingForm(forms.Form):
    """One "use as" choice per column of the file, and the file-wide consent evidence."""

    region = forms.CharField(max_length=2, required=False, help_text="For numbers without +country, e.g. US")
    consent_evidence = forms.CharField(
        max_length=1000,
        required=False,
        label="Consent evidence for the whole file",
        help_text="For opted-in rows without their own: where and how they agreed (text or URL)",
    )
    consent_at = forms.CharField(
        max_length=40, required=False, label="Consented on", help_text="For those rows: when, e.g. 2024-05-01"
    )

    def __init__(self, *args: Any, header: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.header = header
        choices = [(ATTRIBUTE, "Keep as attribute"), (IGNORE, "Ignore"), *ROLES.items()]
        self.column_names = []
        for i, name in enumerate(header):
            self.fields[f"col_{i}"] = forms.ChoiceField(choices=choices, label=name.strip()[:100] or f"column {i + 1}")
            self.column_names.append(f"col_{i}")

    def columns(self) -> list[forms.BoundField]:
        return [self[name] for name in self.column_names]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        chosen = [data.get(name) for name in self.column_names]
        for role, label in ROLES.items():
            if chosen.count(role) > 1:
                raise forms.ValidationError(f"Only one column can be the {label.lower()}.")
        if "phone" not in chosen:
            raise forms.ValidationError("Choose the column that holds the phone numbers.")
        return data

    def mapping(self) -> dict:
        """role -> column name for every role ("" for none), and the ignored columns."""
        chosen = [self.cleaned_data[name] for name in self.column_names]
        mapping: dict = {role: "" for role in ROLES}
        for name, role in zip(self.header, chosen, strict=True):
            if role in ROLES:
                mapping[role] = name.strip()
        mapping[IGNORE] = [name.strip() for name, role in zip(self.header, chosen, strict=True) if role == IGNORE]
        return mapping

    @staticmethod
    def initial_for(header: list[str], mapping: dict, roles: dict[int, str]) -> dict[str, str]:
        """The choices to show: the stored mapping, or what was found by header name (``roles``)."""
        ignored = set(mapping.get(IGNORE, []))
        initial = {
            f"col_{i}": roles.get(i, IGNORE if name.strip() in ignored else ATTRIBUTE) for i, name in enumerate(header)
        }
        return initial


class InboxReplyForm(forms.Form):
    body = forms.CharField(
        label="Your reply",
        widget=forms.Textarea(attrs={"rows": 4}),
        max_length=1600,
        help_text="Sent once, from the number they wrote to. Refused if they have opted out.",
    )
