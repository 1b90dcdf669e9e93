"""What a campaign is expected to cost: segments x recipients x the rate table, country by country.

The composer shows it as the form is typed; launch stores it on the campaign, so the
campaign page can show it beside the actual cost once providers report prices.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings

from accounts.models import AuthorizedSender
from campaigns.audience import audience_by_country, audience_sample
from campaigns.models import Campaign
from messaging.compose import preview
from messaging.costs import Estimate, estimate_cost

SAMPLE = {"first_name": "Alex", "last_name": "Sample", "name": "Alex Sample", "phone": "+14155550123"}


def estimate(
    *,
    body: str,
    list_ids: list[int],
    sender_ids: Iterable[int],
    add_stop_footer: bool,
    smart_encoding: bool,
    is_mms: bool,
    segments: int | None = None,
) -> Estimate | None:
    """None when no sender is chosen (the provider, and so the rate, is unknown)."""
    providers = set(AuthorizedSender.objects.filter(pk__in=list(sender_ids)).values_list("provider", flat=True))
    if not providers:
        return None
    if segments is None:
        sample = audience_sample(list_ids=list_ids)
        context = sample.template_context() if sample else SAMPLE
        segments = preview(
            body, sample_context=context, add_stop_footer=add_stop_footer, smart_encoding=smart_encoding
        )["segments"]
    return estimate_cost(
        providers=providers,
        recipients_by_country=audience_by_country(list_ids=list_ids),
        segments=segments,
        is_mms=is_mms,
        currency=settings.SMS_COST_CURRENCY,
    )


def campaign_estimate(*, campaign: Campaign) -> Estimate | None:
    return estimate(
        body=campaign.body,
        list_ids=list(campaign.lists.values_list("pk", flat=True)),
        sender_ids=campaign.senders.values_list("pk", flat=True),
        add_stop_footer=campaign.add_stop_footer,
        smart_encoding=campaign.smart_encoding,
        is_mms=bool(campaign.media_urls),
    )
