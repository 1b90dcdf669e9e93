"""CSV exports as row generators, for StreamingHttpResponse (never the whole file in memory)."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from datetime import datetime

from recipients.models import ImportJob, RecipientList
from recipients.selectors import attribute_keys_for_lists, consent_events_for_export, import_job_errors

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class _Echo:
    def write(self, value: str) -> str:
        return value


def safe(value: object) -> str:
    """Keep spreadsheets from running a cell as a formula (phone numbers are written as-is)."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def csv_lines(rows: Iterable[list[str]]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    for row in rows:
        yield writer.writerow(row)


def _iso(value: datetime | None) -> str:
    return value.isoformat() if value else ""


def list_members_rows(*, recipient_list: RecipientList) -> Iterator[list[str]]:
    keys = sorted(attribute_keys_for_lists(list_ids=[recipient_list.pk]))
    # Attribute names come from uploaded headers and API clients: escaped like any other cell.
    yield ["phone", "first_name", "last_name", "consent_status", "opted_in_at", "opted_out_at", *map(safe, keys)]
    members = (
        recipient_list.members.order_by("id")
        .values_list("phone", "first_name", "last_name", "consent_status", "opted_in_at", "opted_out_at", "attributes")
        .iterator(chunk_size=2000)
    )
    for phone, first, last, consent, opted_in, opted_out, attributes in members:
        attributes = attributes or {}
        yield [
            phone,
            safe(first),
            safe(last),
            consent,
            _iso(opted_in),
            _iso(opted_out),
            *(safe(attributes.get(k, "")) for k in keys),
        ]


def consent_history_rows(*, recipient_list: RecipientList | None = None) -> Iterator[list[str]]:
    yield ["time", "phone", "from_status", "to_status", "channel", "actor", "evidence"]
    for event in consent_events_for_export(recipient_list=recipient_list).iterator(chunk_size=2000):
        actor = event.actor.username if event.actor else event.actor_description
        yield [
            _iso(event.created_at),
            event.recipient.phone,
            event.from_status,
            event.to_status,
            event.channel,
            safe(actor),
            safe(event.evidence),
        ]


def import_errors_rows(*, job: ImportJob) -> Iterator[list[str]]:
    yield ["row", "phone", "reason", "raw"]
    for error in import_job_errors(job=job).iterator(chunk_size=2000):
        yield [str(error.row_number), safe(error.phone), error.reason, safe(error.raw)]
