"""Prices that a provider reports only on request: Flowroute's message records.

A final Flowroute receipt without a price queues :func:`fetch_flowroute_price`, which reads the
message's record and stores the same final status again, now carrying the price; the drain then
prices the message (its status cannot move back, so the repeat changes nothing else).
"""

from __future__ import annotations

import logging

import httpx
from celery import shared_task
from django.db import transaction

from providers.backends.flowroute import fetch_price_nanodollars
from providers.events import record_status_events
from providers.status import DeliveryStatus, StatusEvent

logger = logging.getLogger(__name__)


@shared_task(
    name="providers.fetch_flowroute_price",
    ignore_result=True,
    autoretry_for=(httpx.HTTPError,),
    retry_backoff=30,
    max_retries=5,
)
def fetch_flowroute_price(ref: str, provider_message_id: str, status: str) -> bool:
    from providers.webhooks.flowroute import CURRENCY, PROVIDER, nanodollars_to_micros

    cost = nanodollars_to_micros(fetch_price_nanodollars(provider_message_id))
    if cost is None:
        return False
    with transaction.atomic():
        record_status_events(
            events=[
                StatusEvent(
                    provider=PROVIDER,
                    message_ref=ref,
                    status=DeliveryStatus(status),
                    provider_message_id=provider_message_id,
                    cost_micros=cost,
                    cost_currency=CURRENCY,
                    raw={"message_record": provider_message_id, "amount_nanodollars_micros": cost},
                )
            ]
        )
    return True
