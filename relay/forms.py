from django import forms


class ConversationForm(forms.Form):
    participant_a = forms.CharField(max_length=40, label="Participant A's number")
    name_a = forms.CharField(max_length=50, required=False, label="A's name (shown to B)")
    participant_b = forms.CharField(max_length=40, label="Participant B's number")
    name_b = forms.CharField(max_length=50, required=False, label="B's name (shown to A)")
    expires_in_hours = forms.FloatField(
        required=False, min_value=0.01, max_value=24 * 365, label="Expires after (hours, blank = never)"
    )
