"""set_and_move: per-row values and the status move in one statement, with move()'s guarantees."""

from __future__ import annotations

import pytest
from django.utils import timezone

from campaigns.models import CampaignCounter
from messaging.models import Message
from messaging.transitions import move, set_and_move


def _message(status: str, n: int, campaign=None) -> Message:
    return Message.objects.create(
        kind=Message.Kind.SINGLE if campaign is None else Message.Kind.CAMPAIGN,
        campaign=campaign,
        to=f"+1415555{3100 + n}",
        body="hi",
        status=status,
    )


@pytest.mark.django_db(transaction=True)
def test_values_are_written_on_every_row_and_only_rows_in_allowed_from_move():
    sending, delivered = _message("sending", 1), _message("delivered", 2)
    now = timezone.now()

    moved = set_and_move(
        rows=[
            {"id": sending.pk, "provider_message_id": "pm-1", "sent_at": now},
            {"id": delivered.pk, "provider_message_id": "pm-2", "sent_at": now},
        ],
        fields=["provider_message_id", "sent_at"],
        to="queued",
        allowed_from=["claimed", "sending", "unknown"],
    )

    assert moved == [(sending.pk, None, "sending")]
    sending.refresh_from_db()
    delivered.refresh_from_db()
    # A report that came first is never moved back, but the send's own answer is kept (as bulk_set did).
    assert (sending.status, sending.provider_message_id, sending.sent_at) == ("queued", "pm-1", now)
    assert (delivered.status, delivered.provider_message_id) == ("delivered", "pm-2")


@pytest.mark.django_db(transaction=True)
def test_json_values_and_counters_follow_the_move(bob, make_campaign):
    campaign = make_campaign(bob)
    rows = [_message("claimed", i, campaign=campaign) for i in range(3)]

    moved = set_and_move(
        rows=[{"id": m.pk, "media_urls": [f"https://example.com/{m.pk}.jpg"], "attempts": 1} for m in rows],
        fields=["media_urls", "attempts"],
        to="queued",
        allowed_from=["claimed", "sending"],
    )

    assert moved == sorted((m.pk, campaign.pk, "claimed") for m in rows)
    for m in rows:
        m.refresh_from_db()
        assert (m.status, m.attempts, m.media_urls) == ("queued", 1, [f"https://example.com/{m.pk}.jpg"])
    deltas: dict[str, int] = {}
    for counter in CampaignCounter.objects.filter(campaign=campaign):
        deltas[counter.bucket] = deltas.get(counter.bucket, 0) + counter.count
    assert {k: v for k, v in deltas.items() if v} == {"waiting": -3, "queued": 3}


@pytest.mark.django_db(transaction=True)
def test_move_sets_its_fields_only_on_the_rows_that_move_and_ignores_empty_input():
    pending, failed = _message("pending", 1), _message("failed", 2)
    now = timezone.now()

    moved = move(ids=[pending.pk, failed.pk], to="cancelled", allowed_from=["pending"], finished_at=now)

    assert moved == [(pending.pk, None, "pending")]
    pending.refresh_from_db()
    failed.refresh_from_db()
    assert (pending.status, pending.finished_at) == ("cancelled", now)
    assert (failed.status, failed.finished_at) == ("failed", None)
    assert move(ids=[], to="cancelled", allowed_from=["pending"]) == []
    assert set_and_move(rows=[], fields=["attempts"], to="pending", allowed_from=["sending"]) == []
