"""Message costs: what providers report they charged, and estimates from the rate table.

Costs are integer micro-units (millionths of the currency). A provider may report
a message's price more than once (each delivery report, each part of a long
message); the message keeps the highest amount reported, so duplicates and
replays add nothing. Campaign totals move by the difference, through the
campaign hooks, in the same transaction as the message.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import connection, transaction

from messaging import hooks
from messaging.models import Message, SegmentRate
from providers.status import StatusEvent, micros
from smsportal import pgarray

ANY_COUNTRY = "*"


def apply_costs(events: Iterable[StatusEvent]) -> None:
    """Store the prices carried by delivery reports on their messages and roll them up to campaigns."""
    reported: dict[int, tuple[int, str]] = {}
    for event in events:
        if event.cost_micros is None or not event.cost_currency or not event.message_ref.isdigit():
            continue
        message_id = int(event.message_ref)
        best = reported.get(message_id)
        if best is None or event.cost_micros > best[0]:
            reported[message_id] = (event.cost_micros, event.cost_currency.upper())
    if not reported:
        return
    with transaction.atomic():
        rows = list(
            Message.objects.select_for_update(of=("self",))
            .filter(pk__in=list(reported))
            .order_by("pk")
            .values_list("pk", "campaign_id", "cost_micros", "cost_currency")
        )
        changed: list[tuple[int, int, str]] = []
        rollup: list[tuple[int, str, int, int]] = []
        for pk, campaign_id, old, old_currency in rows:
            cost, currency = reported[pk]
            if old_currency and old_currency != currency:
                continue  # a second currency for one message: keep the first, never mix them
            if old is not None and cost <= old:
                continue
            changed.append((pk, cost, currency))
            if campaign_id is not None:
                rollup.append((campaign_id, currency, cost - (old or 0), 1 if old is None else 0))
        if not changed:
            return
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {Message._meta.db_table} AS m SET cost_micros = r.cost, cost_currency = r.currency"
                " FROM unnest(%s::bigint[], %s::bigint[], %s::text[]) AS r(id, cost, currency) WHERE m.id = r.id",
                [
                    pgarray.ints(c[0] for c in changed),
                    pgarray.array([c[1] for c in changed]),
                    pgarray.array([c[2] for c in changed]),
                ],
            )
        if rollup:
            hooks.campaigns().record_costs(rollup)


@dataclass(frozen=True)
class Estimate:
    """An estimated cost, and the countries of the audience that have no rate (not counted)."""

    micros: int
    currency: str
    unpriced: dict[str, int] = field(default_factory=dict)  # country -> recipients without a rate
    recipients: int = 0  # how many the estimate covers

    @property
    def complete(self) -> bool:
        return not self.unpriced


def estimate_cost(
    *, providers: Iterable[str], recipients_by_country: Mapping[str, int], segments: int, is_mms: bool, currency: str
) -> Estimate:
    """segments x recipients x rate, country by country. With several providers, the dearest rate counts
    (the send path may use any of them), so the estimate is an upper bound."""
    wanted = sorted(set(providers))
    rates: dict[tuple[str, str], Decimal] = {}
    for rate in SegmentRate.objects.filter(provider__in=wanted, currency=currency):
        per_message = rate.mms_price if is_mms and rate.mms_price is not None else rate.sms_segment_price
        rates[(rate.provider, rate.country)] = per_message * (1 if is_mms else max(segments, 1))
    total = Decimal(0)
    unpriced: dict[str, int] = {}
    for country, count in recipients_by_country.items():
        prices = [rates.get((p, country), rates.get((p, ANY_COUNTRY))) for p in wanted]
        known = [p for p in prices if p is not None]
        if not known or len(known) < len(prices):
            unpriced[country] = unpriced.get(country, 0) + count
        if known:
            total += max(known) * count
    return Estimate(
        micros=micros(total) or 0,
        currency=currency,
        unpriced=unpriced,
        recipients=sum(recipients_by_country.values()),
    )
