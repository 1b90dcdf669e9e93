"""record_status_events' single-row INSERT: stored like ``save()`` would, errors like the ORM's."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import DataError, transaction

from providers.events import record_status_events
from providers.models import ProviderEvent
from providers.status import DeliveryStatus, StatusEvent

pytestmark = pytest.mark.django_db


def event(**kw) -> StatusEvent:
    fields = {
        "provider": "plivo",
        "message_ref": "7",
        "status": DeliveryStatus.FAILED,
        "provider_message_id": "p" * 150,
        "error_code": "300",
        "error_text": "failed (Plivo error 300)",
        "occurred_at": datetime(2026, 3, 1, 12, 0, 1, tzinfo=UTC),
        "raw": {"Status": "failed", "Media": ["a", "b"], "Note": "ü"},
    }
    return StatusEvent(**{**fields, **kw})


def test_one_event_is_stored_with_every_field(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    before = datetime.now(UTC)
    for _ in range(7):  # past psycopg's prepare threshold: the prepared statement is reused
        assert record_status_events(events=[event()]) == 1
    rows = list(ProviderEvent.objects.order_by("pk"))
    assert len(rows) == 7
    row = rows[-1]
    assert (row.provider, row.kind, row.message_ref, row.status) == ("plivo", "status", "7", "failed")
    assert row.provider_message_id == "p" * 100  # truncated to the column, as before
    assert (row.error_code, row.error_text) == ("300", "failed (Plivo error 300)")
    assert row.occurred_at == datetime(2026, 3, 1, 12, 0, 1, tzinfo=UTC)
    assert row.payload == {"Status": "failed", "Media": ["a", "b"], "Note": "ü"}
    assert row.received_at >= before and row.processed_at is None


def test_a_database_error_is_djangos_and_stores_nothing(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    with pytest.raises(DataError), transaction.atomic():
        record_status_events(events=[event(provider="x" * 30)])  # the column holds 20
    assert not ProviderEvent.objects.exists()
    record_status_events(events=[event()])  # the connection is still usable
    assert ProviderEvent.objects.count() == 1
