"""A campaign's messages as CSV rows (streamed): status, segments and what each cost."""

from __future__ import annotations

from collections.abc import Iterator

from campaigns.models import Campaign
from campaigns.selectors import campaign_cost
from recipients.exports import safe


def campaign_message_rows(*, campaign: Campaign) -> Iterator[list[str]]:
    cost = campaign_cost(campaign=campaign)
    yield ["to", "sender", "status", "segments", "sent_at", "finished_at", "error", "cost", "currency"]
    rows = (
        campaign.messages.order_by("id")
        .values_list(
            "to", "sender", "status", "segments", "sent_at", "finished_at", "error_text", "cost_micros", "cost_currency"
        )
        .iterator(chunk_size=2000)
    )
    for to, sender, status, segments, sent_at, finished_at, error, micros, currency in rows:
        yield [
            to,
            sender,
            status,
            str(segments),
            sent_at.isoformat() if sent_at else "",
            finished_at.isoformat() if finished_at else "",
            safe(error),
            "" if micros is None else _amount(micros),
            currency,
        ]
    # The campaign's totals from its counters, so the file states them even after messages are purged.
    yield ["total", "", "", "", "", "", "", _amount(cost["actual_micros"]), cost["currency"]]
    if cost["estimated_micros"] is not None:
        yield ["estimate", "", "", "", "", "", "", _amount(cost["estimated_micros"]), cost["currency"]]


def _amount(value_micros: int) -> str:
    return f"{value_micros / 1_000_000:.6f}"
