"""bulk_set (messaging/bulk.py) writes per-row values of every column type it is used with."""

from datetime import UTC, datetime, timedelta

import pytest

from messaging.bulk import bulk_set
from messaging.models import Message

pytestmark = pytest.mark.django_db


def test_it_sets_each_row_its_own_values_for_every_type():
    a = Message.objects.create(to="+14155550001")
    b = Message.objects.create(to="+14155550002")
    untouched = Message.objects.create(to="+14155550003", body="keep")
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    bulk_set(
        [
            {
                "id": a.pk,
                "body": "é ünïcode 'q'",
                "segments": 2,
                "media_urls": ["https://x/a.png"],
                "sent_at": when,
                "error_permanent": True,
                "enqueued_at": None,
                "provider_message_id": "p-1",
            },
            {
                "id": b.pk,
                "body": "",
                "segments": 1,
                "media_urls": [],
                "sent_at": when + timedelta(hours=1),
                "error_permanent": None,
                "enqueued_at": None,
                "provider_message_id": "",
            },
        ],
        ["body", "segments", "media_urls", "sent_at", "error_permanent", "enqueued_at", "provider_message_id"],
    )
    a.refresh_from_db()
    b.refresh_from_db()
    untouched.refresh_from_db()
    assert (a.body, a.segments, a.media_urls, a.sent_at, a.error_permanent) == (
        "é ünïcode 'q'",
        2,
        ["https://x/a.png"],
        when,
        True,
    )
    assert a.provider_message_id == "p-1" and a.enqueued_at is None
    assert (b.body, b.segments, b.media_urls, b.sent_at, b.error_permanent) == (
        "",
        1,
        [],
        when + timedelta(hours=1),
        None,
    )
    assert untouched.body == "keep" and untouched.segments == 0


def test_it_accepts_an_empty_list():
    bulk_set([], ["body"])
    assert Message.objects.count() == 0
