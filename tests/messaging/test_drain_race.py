"""Issue 17 finding 3: the status drain and the send path's record step on the same rows, on two real
connections. The drain never waits for rows the send path holds (so the two cannot deadlock), keeps
their reports for a later drain, and a deadlock anywhere retries the work instead of dropping it."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, transaction
from django.utils import timezone

from messaging.models import Message, MessageStatus
from providers.db import retry_on_deadlock
from providers.models import ProviderEvent
from providers.status import DeliveryStatus
from providers.tasks import drain_status_events

pytestmark = pytest.mark.django_db(transaction=True)
S = MessageStatus
WAIT = 10  # seconds; only reached when the behaviour under test is broken


def in_thread(work) -> tuple[threading.Thread, dict]:
    """Run ``work`` on its own thread, hence its own database connection."""
    out: dict = {}

    def run():
        try:
            out["result"] = work()
        except BaseException as exc:  # reported to the test
            out["error"] = exc
        finally:
            connection.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


def sent_messages(n: int) -> list[Message]:
    return [
        Message.objects.create(
            kind=Message.Kind.SINGLE,
            to=f"+1415555{2600 + i}",
            sender="+14155550100",
            provider="plivo",
            status=S.QUEUED,
            provider_message_id=f"uuid-{i}",
        )
        for i in range(n)
    ]


def test_a_drain_over_rows_a_batch_is_recording_skips_them_and_applies_them_later():
    first, held, last = sent_messages(3)
    ProviderEvent.objects.bulk_create(  # stored, as the webhooks store them; not drained yet
        ProviderEvent(
            provider="plivo",
            kind=ProviderEvent.Kind.STATUS,
            message_ref=str(m.pk),
            status=DeliveryStatus.DELIVERED,
            provider_message_id=m.provider_message_id,
        )
        for m in (first, held, last)
    )
    holding, release = threading.Event(), threading.Event()

    def record_step():
        """The send path's record step: it has written ``held`` and goes on to ``first`` and ``last``."""
        with transaction.atomic():
            now = timezone.now()
            Message.objects.filter(pk=held.pk).update(provider_message_id="uuid-1", sent_at=now)
            holding.set()
            release.wait(WAIT)
            Message.objects.filter(pk__in=[first.pk, last.pk]).update(sent_at=now)

    sender, sent = in_thread(record_step)
    assert holding.wait(WAIT)
    drainer, drained = in_thread(drain_status_events)
    drainer.join(WAIT)
    finished_while_held = not drainer.is_alive()
    release.set()
    sender.join(WAIT)
    drainer.join(WAIT)

    assert finished_while_held, "the drain waited for a row the send path holds"
    assert "error" not in sent and "error" not in drained, (sent, drained)
    assert drained["result"] == 2  # applied first and last; kept held's report
    statuses = dict(Message.objects.values_list("pk", "status"))
    assert (statuses[first.pk], statuses[held.pk], statuses[last.pk]) == (S.DELIVERED, S.QUEUED, S.DELIVERED)
    assert ProviderEvent.objects.filter(processed_at__isnull=True).count() == 1

    assert drain_status_events() == 1  # the send path let go: the kept report is applied
    assert Message.objects.get(pk=held.pk).status == S.DELIVERED


def test_a_deadlock_is_retried_and_both_sides_finish():
    a, b = sent_messages(2)
    both_locked = threading.Barrier(2, timeout=WAIT)
    attempts = {"left": 0, "right": 0}

    def crossing(side: str, one: Message, other: Message):
        def work():
            attempts[side] += 1
            with transaction.atomic():
                Message.objects.filter(pk=one.pk).update(error_text=side)
                if attempts[side] == 1:
                    both_locked.wait()  # each holds one row and asks for the other: PostgreSQL kills one
                Message.objects.filter(pk=other.pk).update(error_text=side)
            return side

        return lambda: retry_on_deadlock(work, what=side)

    left, left_out = in_thread(crossing("left", a, b))
    right, right_out = in_thread(crossing("right", b, a))
    left.join(WAIT)
    right.join(WAIT)

    assert (left_out, right_out) == ({"result": "left"}, {"result": "right"})
    assert sorted(attempts.values()) == [1, 2]  # exactly one side was chosen as the victim and retried
