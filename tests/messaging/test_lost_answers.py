"""A lost answer is never sent again blindly, a single send's as a group's: the row waits ``unknown``
for its delivery report, and only one that heard none for its provider's window
(``sweeper.silence_limit``) goes out again, once. Over real HTTP to the fake provider, with real PostgreSQL and Redis."""

from __future__ import annotations

import socket
import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from messaging import sweeper
from messaging.engine import send_batch
from messaging.models import Message, MessageStatus
from providers import registry
from providers.models import ProviderEvent
from providers.tasks import drain_status_events
from tests.conftest import aim_plivo, wait_for
from tests.providers.conftest import PLIVO_SECRET, signed_plivo_post

S = MessageStatus
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def plivo(settings, fake_provider):
    aim_plivo(settings, fake_provider)
    settings.PLIVO_WEBHOOK_SECRET = PLIVO_SECRET
    settings.PUBLIC_BASE_URL = "https://sms.example.com"
    settings.SMS_GROUP_SIZE = 1  # single sends: one request per message
    settings.SMS_HTTP_TIMEOUT = 1.5
    fake_provider.configure(callbacks=False)  # reports are posted by the tests, when they choose
    return fake_provider


@pytest.fixture
def rows(bob, make_sender, make_recipients):
    sender = make_sender(bob)

    def make(n: int) -> list[int]:
        return [
            Message.objects.create(
                kind=Message.Kind.SINGLE, recipient=p, to=p.phone, sender=sender.number, provider="plivo", body="hi"
            ).pk
            for p in make_recipients(n)
        ]

    return make


def statuses(ids: list[int]) -> dict[int, str]:
    return dict(Message.objects.filter(pk__in=ids).values_list("pk", "status"))


def at_fake(fake) -> list[str]:
    return sorted(m["dst"] for m in fake.messages(fields=["dst"]))


def send_until_recorded(ids: list[int]) -> None:
    send_batch(message_ids=ids)
    wait_for(lambda: S.SENDING not in statuses(ids).values(), timeout=30, message="outcomes recorded")


def due_now(ids: list[int]) -> None:
    Message.objects.filter(pk__in=ids).update(due_at=timezone.now() - timedelta(seconds=1))


def silent_for(ids: list[int], seconds: float) -> None:
    """As if the answers were lost ``seconds`` ago."""
    Message.objects.filter(pk__in=ids).update(lease_expires_at=timezone.now() - timedelta(seconds=seconds))


def report(client, pk: int, uuid: str, status: str = "delivered") -> None:
    path = f"/webhooks/plivo/{PLIVO_SECRET}/status/{pk}/"
    params = {"MessageUUID": uuid, "Status": status, "To": "1", "From": "14155550100"}
    assert signed_plivo_post(client, path, params).status_code == 200
    drain_status_events()


def test_a_single_send_whose_answer_is_lost_after_acceptance_is_not_sent_twice(plivo, rows):
    (pk,) = ids = rows(1)
    plivo.configure(rate_accept_timeout=1.0, timeout_hold_s=10)  # accepted and recorded, the answer held

    send_until_recorded(ids)
    plivo.configure(rate_accept_timeout=0.0)
    due_now(ids)
    send_until_recorded(ids)  # a redelivered task, the sweeper's dispatch (a retry did send it again)
    sweeper.run()  # inside the window: nothing to send again

    assert plivo.stats()["requests"] == 1 and len(at_fake(plivo)) == 1
    row = Message.objects.get(pk=pk)
    assert (row.status, row.error_code, row.attempts) == (S.UNKNOWN, "read_timeout", 1)


def test_a_single_send_refused_before_sending_is_retried(plivo, rows, settings):
    (pk,) = ids = rows(1)
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        settings.PLIVO_API_URL = f"http://127.0.0.1:{closed.getsockname()[1]}"  # nothing listens there

    send_until_recorded(ids)
    row = Message.objects.get(pk=pk)
    assert (row.status, row.error_code, row.attempts) == (S.PENDING, "refused", 1)

    settings.PLIVO_API_URL = plivo.url
    due_now(ids)
    send_until_recorded(ids)

    assert statuses(ids) == {pk: S.QUEUED} and len(at_fake(plivo)) == 1


def test_an_unknown_row_with_no_report_past_the_window_is_sent_again_exactly_once(plivo, rows, settings):
    settings.SMS_UNKNOWN_RESEND_SECONDS = 600
    ids = rows(3)
    plivo.configure(rate_timeout=1.0, timeout_hold_s=10)  # the fake holds the request, refuses it, never reports
    send_until_recorded(ids)
    assert set(statuses(ids).values()) == {S.UNKNOWN} and at_fake(plivo) == []
    plivo.configure(rate_timeout=0.0)

    silent_for(ids, 500)  # inside the window: left to its report
    sweeper.run()
    assert set(statuses(ids).values()) == {S.UNKNOWN}

    silent_for(ids, 700)
    sweeper.run()  # back to pending, due now, and queued at once (tests run tasks eagerly)
    wait_for(lambda: set(statuses(ids).values()) == {S.QUEUED}, timeout=30, message="sent again")
    sweeper.run()  # the next beat tick finds nothing more to do
    due_now(ids)
    send_batch(message_ids=ids)

    moved = set(Message.objects.filter(pk__in=ids).values_list("status", "error_code", "error_text"))
    assert moved == {(S.QUEUED, "no_report", "no report 600 s after a lost answer (read_timeout): sent again")}
    assert set(Message.objects.filter(pk__in=ids).values_list("attempts", flat=True)) == {2}
    assert plivo.stats()["requests"] == 3 + 3 and len(at_fake(plivo)) == 3 and not plivo.duplicates()


def test_an_unknown_row_that_got_its_report_is_not_sent_again(plivo, rows, client):
    (pk,) = ids = rows(1)
    plivo.configure(rate_accept_timeout=1.0, timeout_hold_s=10)
    send_until_recorded(ids)
    (accepted,) = plivo.messages(fields=["id"])

    report(client, pk, accepted["id"], "sent")  # adopted: the report names our message and gives its id
    silent_for(ids, 10 * 24 * 3600)
    sweeper.run()
    due_now(ids)
    send_batch(message_ids=ids)

    row = Message.objects.get(pk=pk)
    assert (row.status, row.provider_message_id) == (S.SENT, accepted["id"])
    assert plivo.stats()["requests"] == 1


def test_an_unknown_row_out_of_attempts_fails_saying_why(plivo, rows, settings):
    settings.SMS_MAX_ATTEMPTS = 1
    (pk,) = ids = rows(1)
    plivo.configure(rate_drop=1.0)  # the connection closes unanswered
    send_until_recorded(ids)
    assert statuses(ids) == {pk: S.UNKNOWN}

    silent_for(ids, sweeper.silence_limit("plivo") + 1)
    sweeper.run()

    row = Message.objects.get(pk=pk)
    assert (row.status, row.error_code, row.error_permanent) == (S.FAILED, "no_report", True)
    assert "no attempt left" in row.error_text and row.finished_at is not None


def test_concurrent_sweeps_send_each_unreported_row_again_once(plivo, rows, settings):
    ids = rows(20)
    plivo.configure(rate_timeout=1.0, timeout_hold_s=10)
    send_until_recorded(ids)
    assert set(statuses(ids).values()) == {S.UNKNOWN}
    plivo.configure(rate_timeout=0.0)
    silent_for(ids, sweeper.silence_limit("plivo") + 1)

    counts: list[tuple[int, int]] = []
    start = threading.Barrier(3)

    def sweep() -> None:
        try:
            start.wait(10)
            counts.append(sweeper.resend_unreported(now=timezone.now()))
        finally:
            connection.close()

    threads = [threading.Thread(target=sweep) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)

    assert len(counts) == 3 and sum(again for again, _ in counts) == 20  # each row moved by one sweep
    send_until_recorded(ids)
    send_batch(message_ids=ids)
    assert set(statuses(ids).values()) == {S.QUEUED}
    assert len(at_fake(plivo)) == 20 and not plivo.duplicates()


def test_a_late_report_of_the_first_attempt_after_the_resend_is_kept_but_changes_nothing(plivo, rows, client, settings):
    """The first attempt was accepted after all but reported past the window: the recipient got it
    twice (what the window's length guards against). Its report is stored as evidence, and the row
    follows only the report of the send it holds: no final status flips to another."""
    (pk,) = ids = rows(1)
    plivo.configure(rate_accept_timeout=1.0, timeout_hold_s=10)
    send_until_recorded(ids)
    plivo.configure(rate_accept_timeout=0.0)
    silent_for(ids, sweeper.silence_limit("plivo") + 1)
    sweeper.run()
    send_until_recorded(ids)
    first, second = (m["id"] for m in plivo.messages(fields=["id"]))
    row = Message.objects.get(pk=pk)
    assert (row.status, row.provider_message_id) == (S.QUEUED, second)

    report(client, pk, second, "delivered")
    report(client, pk, first, "failed")  # late, for the first attempt

    row.refresh_from_db()
    assert (row.status, row.provider_message_id) == (S.DELIVERED, second)
    late = ProviderEvent.objects.get(message_ref=str(pk), provider_message_id=first)
    assert late.status == "failed" and late.processed_at is not None  # stored, read, not applied


def test_a_report_dropped_while_the_row_was_sending_settles_it_once_unknown_never_a_resend(
    plivo, rows, client, settings
):
    """A worker died mid-request and beat was down past the early-report limit: the report was read
    and dropped while the row was still ``sending``. The row heard a report all the same: the sweeper
    hands it to the drain again instead of sending the message a second time."""
    (pk,) = ids = rows(1)
    Message.objects.filter(pk=pk).update(status=S.SENDING, attempts=1)
    report(client, pk, "uuid-1", "delivered")
    ProviderEvent.objects.update(received_at=timezone.now() - timedelta(days=1), processed_at=None)
    drain_status_events()  # waited longer than any send can take: read, not applied
    assert statuses(ids) == {pk: S.SENDING}

    silent_for(ids, sweeper.silence_limit("plivo") + 1)  # the lease ran out long ago
    sweeper.run()  # sending -> unknown, then: heard a report, so not sent again
    drain_status_events()

    row = Message.objects.get(pk=pk)
    assert (row.status, row.provider_message_id) == (S.DELIVERED, "uuid-1")
    assert plivo.stats()["requests"] == 0
    assert ProviderEvent.objects.get(message_ref=str(pk)).handed_back_at is not None  # once: the sweeper's note


def _unknown_holding(pk: int, provider_id: str, settings) -> None:
    """An ``unknown`` row that already holds a provider id, its answer lost past the window: a report
    naming another id is not its report (the drain ignores it)."""
    Message.objects.filter(pk=pk).update(status=S.UNKNOWN, attempts=1, provider_message_id=provider_id)
    silent_for([pk], sweeper.silence_limit("plivo") + 1)


def test_a_stored_report_the_row_cannot_take_is_handed_back_once_then_the_row_is_sent_again(
    plivo, rows, client, settings
):
    """Handing such a report to the drain on every sweep kept the row ``unknown`` for ever, neither
    sent again nor failed: it is handed back once, then the row is one that heard nothing."""
    (pk,) = ids = rows(1)
    _unknown_holding(pk, "uuid-2", settings)
    report(client, pk, "uuid-1", "delivered")  # read, ignored: the row holds another id
    assert statuses(ids) == {pk: S.UNKNOWN}

    sweeps = []
    for _ in range(3):
        sweeps.append(sweeper.resend_unreported(now=timezone.now()))
        drain_status_events()

    assert sweeps == [(0, 0), (1, 0), (0, 0)]  # handed back, read and ignored again; then sent again, once
    row = Message.objects.get(pk=pk)
    assert (row.status, row.error_code, row.error_permanent) == (S.PENDING, "no_report", False)
    assert row.error_text == (
        f"no report it could take {sweeper.silence_limit('plivo'):.0f} s after a lost answer (worker lost); "
        "reports stored, not applicable: uuid-1: sent again"
    )
    event = ProviderEvent.objects.get(message_ref=str(pk))
    assert event.processed_at is not None and event.handed_back_at is not None


def test_a_stored_report_the_row_cannot_take_fails_it_when_no_attempt_is_left(plivo, rows, client, settings):
    settings.SMS_MAX_ATTEMPTS = 1
    (pk,) = ids = rows(1)
    _unknown_holding(pk, "uuid-2", settings)
    report(client, pk, "uuid-1", "failed")
    report(client, pk, "uuid-3", "delivered")

    sweeps = []
    for _ in range(3):
        sweeps.append(sweeper.resend_unreported(now=timezone.now()))
        drain_status_events()

    assert sweeps == [(0, 0), (0, 1), (0, 0)]
    row = Message.objects.get(pk=pk)
    assert (row.status, row.error_code, row.error_permanent) == (S.FAILED, "no_report", True)
    assert row.error_text.endswith("reports stored, not applicable: uuid-1, uuid-3, no attempt left")
    assert row.finished_at is not None and statuses(ids) == {pk: S.FAILED}
    assert plivo.stats()["requests"] == 0


def test_a_report_handed_back_is_waited_for_until_the_drain_reads_it(plivo, rows, client, settings):
    """The drain may run after the next sweeps: a report handed back and not read yet still counts
    as heard (never a resend), is not handed back twice, and when read it settles the row."""
    (pk,) = ids = rows(1)
    Message.objects.filter(pk=pk).update(status=S.SENDING, attempts=1)
    report(client, pk, "uuid-1", "delivered")
    ProviderEvent.objects.update(received_at=timezone.now() - timedelta(days=1), processed_at=None)
    drain_status_events()  # outwaited the early-report limit: read, not applied
    Message.objects.filter(pk=pk).update(status=S.UNKNOWN)
    silent_for(ids, sweeper.silence_limit("plivo") + 1)
    handed_back = timezone.now() - timedelta(seconds=5)
    ProviderEvent.objects.update(processed_at=None, handed_back_at=handed_back)  # by a sweep; no drain since

    for _ in range(3):
        assert sweeper.resend_unreported(now=timezone.now()) == (0, 0)
    drain_status_events()

    row = Message.objects.get(pk=pk)
    assert (row.status, row.provider_message_id) == (S.DELIVERED, "uuid-1")
    event = ProviderEvent.objects.get(message_ref=str(pk))
    assert event.processed_at is not None and event.handed_back_at == handed_back
    assert plivo.stats()["requests"] == 0


def _unknown_rows(rows, provider: str, n: int = 1) -> list[int]:
    ids = rows(n)
    Message.objects.filter(pk__in=ids).update(provider=provider, status=S.UNKNOWN, attempts=1, error_code="reset")
    return ids


def test_by_default_each_provider_waits_its_own_stated_bound_then_resends(rows, settings, monkeypatch):
    settings.SMS_UNKNOWN_RESEND_SECONDS = 0  # the default: each provider's registry entry decides
    monkeypatch.setattr(registry, "REPORT_GRACE_SECONDS", 0)  # Plivo's window is its 3 h alone
    plivo_ids = _unknown_rows(rows, "plivo")
    flowroute_ids = _unknown_rows(rows, "flowroute")  # states no bound: the unstated wait, 4 h
    other_ids = _unknown_rows(rows, "sandbox")  # a backend that is no provider: the same

    silent_for(plivo_ids + flowroute_ids + other_ids, 3 * 3600 - 60)
    assert sweeper.resend_unreported(now=timezone.now()) == (0, 0)

    silent_for(plivo_ids + flowroute_ids + other_ids, 3 * 3600 + 60)
    assert sweeper.resend_unreported(now=timezone.now()) == (1, 0)
    assert statuses(plivo_ids) == {plivo_ids[0]: S.PENDING}
    assert set(statuses(flowroute_ids + other_ids).values()) == {S.UNKNOWN}
    assert Message.objects.get(pk=plivo_ids[0]).error_text == (
        "no report 10800 s after a lost answer (reset): sent again"
    )

    silent_for(flowroute_ids + other_ids, 4 * 3600 + 60)
    assert sweeper.resend_unreported(now=timezone.now()) == (2, 0)
    texts = set(Message.objects.filter(pk__in=flowroute_ids + other_ids).values_list("status", "error_text"))
    assert texts == {(S.PENDING, "no report 14400 s after a lost answer (reset): sent again")}


def test_the_setting_overrides_every_providers_bound(rows, settings):
    settings.SMS_UNKNOWN_RESEND_SECONDS = 60
    ids = _unknown_rows(rows, "plivo") + _unknown_rows(rows, "flowroute")
    silent_for(ids, 61)
    assert sweeper.resend_unreported(now=timezone.now()) == (2, 0)
