from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.models import AuthorizedSender, User
from campaigns.models import Campaign, CampaignEvent
from messaging.compose import MAX_MEDIA_URLS, MAX_TEMPLATE_CHARS, validate_media_urls
from recipients.models import RecipientList

from .fields import VisibleListField

CampaignStatus = Campaign.Status  # named in SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"]


class _OwnSenders(serializers.PrimaryKeyRelatedField):
    """Only the caller's own sender grants can be chosen (the web UI's rule)."""

    def get_queryset(self):
        request = self.context.get("request")
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return AuthorizedSender.objects.none()
        return AuthorizedSender.objects.filter(user=user)


@extend_schema_field(
    {"type": "string", "pattern": r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?$", "example": "08:00"}
)
class HourMinuteField(serializers.TimeField):
    """A local wall-clock time, ``HH:MM``: no zone, so not OpenAPI's ``format: time``."""

    def __init__(self, **kwargs):
        super().__init__(format="%H:%M", input_formats=["%H:%M", "%H:%M:%S"], **kwargs)


class CampaignSerializer(serializers.ModelSerializer):
    send_window_start = HourMinuteField(
        required=False,
        allow_null=True,
        help_text="Recipients' local time, e.g. 08:00. Default null: no window, messages go out at any hour",
    )
    send_window_end = HourMinuteField(
        required=False, allow_null=True, help_text="Recipients' local time, e.g. 21:00. Default null: no window"
    )
    body = serializers.CharField(max_length=MAX_TEMPLATE_CHARS, help_text=Campaign._meta.get_field("body").help_text)
    media_urls = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        max_length=MAX_MEDIA_URLS,
        help_text="https URLs for MMS. Default empty: an SMS",
    )
    senders = _OwnSenders(many=True, required=False, help_text="Ids of your own authorized senders")
    lists = VisibleListField(many=True, required=False)
    created_by = serializers.SlugRelatedField[User](slug_field="username", read_only=True)
    # Not the model's column (the rows made so far): a launch answered 0 until the workers made the rows.
    recipient_total = serializers.IntegerField(
        source="expected_total",
        read_only=True,
        help_text="How many messages it sends: 0 for a draft; from launch, the opted-in people counted then, "
        "until every message exists",
    )

    class Meta:
        model = Campaign
        fields = [
            "id",
            "name",
            "body",
            "media_urls",
            "add_stop_footer",
            "smart_encoding",
            "track_links",
            "senders",
            "lists",
            "send_at",
            "send_window_start",
            "send_window_end",
            "valid_until",
            "max_spend_micros",
            "status",
            "pause_reason",
            "recipient_total",
            "estimated_cost_micros",
            "created_by",
            "created_at",
            "updated_at",
            "launched_at",
            "completed_at",
            "cancelled_at",
        ]
        read_only_fields = [
            "id",
            "status",
            "pause_reason",
            "recipient_total",
            "estimated_cost_micros",
            "created_by",
            "created_at",
            "updated_at",
            "launched_at",
            "completed_at",
            "cancelled_at",
        ]
        extra_kwargs = {
            "smart_encoding": {
                "help_text": "Replace look-alike characters (curly quotes, dashes) so the text fits GSM-7 and costs"
                " fewer segments. Defaults to true."
            },
            "send_at": {"help_text": "Start sending at this time. Default null: launch sends at once."},
            "valid_until": {"help_text": "Unsent messages expire after this. Default null: they never expire."},
            "max_spend_micros": {
                "min_value": 1,
                "max_value": 10**15,
                "help_text": "Budget in millionths of the portal's cost currency: the campaign pauses itself"
                " before a message would take it over. Null: no budget.",
            },
            "estimated_cost_micros": {"help_text": "The estimate from the rate table, stored at launch"},
            "add_stop_footer": {
                "help_text": 'Append "Reply STOP to opt out" unless the body already says how to opt out.'
                " Defaults to true."
            },
        }

    def validate_media_urls(self, value: list[str]) -> list[str]:
        try:
            return validate_media_urls(value)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from None

    def validate_lists(self, value: list[RecipientList]) -> list[RecipientList]:
        archived = [lst.name for lst in value if lst.is_archived]
        if archived:
            raise serializers.ValidationError(f"Archived lists cannot be targeted: {', '.join(archived)}.")
        return value


class CampaignEventSerializer(serializers.ModelSerializer):
    kind = serializers.CharField(help_text="auto_pause, auto_resume, failover, expiry, ...", read_only=True)

    class Meta:
        model = CampaignEvent
        fields = ["id", "kind", "detail", "created_at"]
        read_only_fields = fields


class PauseSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=200)


class RetryResultSerializer(serializers.Serializer):
    retried = serializers.IntegerField(help_text="Messages sent again")


class CostSerializer(serializers.Serializer):
    currency = serializers.CharField(help_text="ISO 4217 code of the amounts below (the portal's cost currency)")
    actual_micros = serializers.IntegerField(help_text="What the providers reported charging so far, in millionths")
    priced_messages = serializers.IntegerField(help_text="Messages whose price a provider reported")
    estimated_micros = serializers.IntegerField(allow_null=True, help_text="The rate-table estimate made at launch")
    max_spend_micros = serializers.IntegerField(allow_null=True, help_text="The campaign's budget, if any")
    other_currencies = serializers.DictField(
        child=serializers.IntegerField(), help_text="Costs a provider reported in another currency, in millionths"
    )


class ClicksSerializer(serializers.Serializer):
    total = serializers.IntegerField(help_text="Visits to the campaign's tracked short links")
    unique = serializers.IntegerField(help_text="Links clicked at least once (one per recipient and URL)")
    recipients = serializers.IntegerField(help_text="Recipients who clicked at least one of their links")


class StatsSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=Campaign.Status.choices, help_text="The campaign's status now")
    final = serializers.BooleanField(
        help_text="True once the campaign is completed or cancelled: the counts will not change any more"
    )
    total = serializers.IntegerField()
    counts = serializers.DictField(child=serializers.IntegerField(), help_text="Messages per status bucket")
    done = serializers.IntegerField()
    progress = serializers.FloatField(help_text="Percent done")
    cost = CostSerializer()
    clicks = ClicksSerializer()


class PreviewSerializer(serializers.Serializer):
    recipient_count = serializers.IntegerField(help_text="Opted-in people in the lists, each once")
    sample = serializers.BooleanField(
        help_text="True when no list member is opted in yet, so the text was rendered with empty"
        " personal fields; false when it is the message for a real opted-in member"
    )
    text = serializers.CharField(help_text="The message for the first opted-in member (or sample data: see sample)")
    encoding = serializers.CharField()
    characters = serializers.IntegerField()
    units = serializers.IntegerField()
    segments = serializers.IntegerField()
    per_segment_limit = serializers.IntegerField()
    remaining_in_segment = serializers.IntegerField()
    max_characters = serializers.IntegerField()
    errors = serializers.ListField(child=serializers.CharField())  # type: ignore[assignment]  # a field named like a Serializer attribute; DRF's metaclass moves it
