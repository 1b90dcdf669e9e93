"""The paths that settle a lost answer, raced on the same rows: several sweeper runs
(``sweeper.resend_unreported``), the drain applying a late report posted through the signed webhook,
and the send path resending, all at once on real connections to PostgreSQL, Redis and the fake
provider. Each round starts them together (a barrier) with random small offsets, so the rounds
cover different interleavings; what must hold is checked per row, whatever the order.

Every committed status change is seen by a PostgreSQL trigger (``status_log``) and compared with
what ``messaging.transitions.move`` announced: a change made any other way shows up as a difference.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test import Client
from django.utils import timezone

from messaging import sweeper
from messaging.engine import send_batch
from messaging.models import Message, MessageStatus
from messaging.signals import messages_moved
from providers.models import ProviderEvent
from providers.tasks import drain_status_events
from tests.conftest import aim_plivo, wait_for
from tests.providers.conftest import PLIVO_SECRET, signed_plivo_post

S = MessageStatus
pytestmark = pytest.mark.django_db(transaction=True)
WAIT = 30  # seconds a racer may take; only reached when something stalls or deadlocks
REPORTED = {"delivered": S.DELIVERED, "failed": S.FAILED, "undelivered": S.UNDELIVERED}


@pytest.fixture
def plivo(settings, fake_provider):
    aim_plivo(settings, fake_provider)
    settings.PLIVO_WEBHOOK_SECRET = PLIVO_SECRET
    settings.PUBLIC_BASE_URL = "https://sms.example.com"
    settings.SMS_GROUP_SIZE = 1  # one request per message: the fake counts each recipient's sends
    settings.SMS_HTTP_TIMEOUT = 1.5
    fake_provider.configure(callbacks=False)  # the late reports are posted by the racers
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


@dataclass
class Ledger:
    """Committed status changes, twice: as ``move`` announced them and as the database saw them."""

    moved: list[tuple[int, str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def seen(self, ids: list[int], *, after: int = 0) -> list[tuple[int, str, str]]:
        """(id, from, to) of every committed status change of ``ids`` (after the mark ``after``),
        in the order it was made."""
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT message_id, old, new FROM race_status_log WHERE message_id = ANY(%s) AND seq > %s ORDER BY seq",
                [ids, after],
            )
            return [(pk, old, new) for pk, old, new in cursor.fetchall()]

    def mark(self) -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT coalesce(max(seq), 0) FROM race_status_log")
            return int(cursor.fetchone()[0])

    def announced(self, ids: list[int], *, after: int = 0) -> list[tuple[int, str, str]]:
        """What ``move`` announced for ``ids`` (after the first ``after`` announcements)."""
        wanted = set(ids)
        with self.lock:
            return [m for m in self.moved[after:] if m[0] in wanted]

    def event_changes(self, event_ids: list[int]) -> list[tuple[int, str]]:
        """(event id, what changed) for each committed read (``processed_at`` set) or hand-back."""
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT event_id, what FROM race_event_log WHERE event_id = ANY(%s) ORDER BY seq", [event_ids]
            )
            return list(cursor.fetchall())


@pytest.fixture
def ledger(transactional_db) -> Iterator[Ledger]:
    table, events = Message._meta.db_table, ProviderEvent._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            CREATE TABLE race_status_log (seq bigserial, message_id bigint, old text, new text);
            CREATE TABLE race_event_log (seq bigserial, event_id bigint, what text);
            CREATE FUNCTION race_log_status() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              IF OLD.status IS DISTINCT FROM NEW.status THEN
                INSERT INTO race_status_log (message_id, old, new) VALUES (NEW.id, OLD.status, NEW.status);
              END IF;
              RETURN NULL;
            END $$;
            CREATE FUNCTION race_log_event() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              IF OLD.processed_at IS NULL AND NEW.processed_at IS NOT NULL THEN
                INSERT INTO race_event_log (event_id, what) VALUES (NEW.id, 'read');
              END IF;
              IF OLD.handed_back_at IS DISTINCT FROM NEW.handed_back_at THEN
                INSERT INTO race_event_log (event_id, what) VALUES (NEW.id, 'handed_back');
              END IF;
              RETURN NULL;
            END $$;
            CREATE TRIGGER race_log_status AFTER UPDATE ON "{table}" FOR EACH ROW EXECUTE FUNCTION race_log_status();
            CREATE TRIGGER race_log_event AFTER UPDATE ON "{events}" FOR EACH ROW EXECUTE FUNCTION race_log_event();
            """
        )
    book = Ledger()

    def on_move(sender: object, rows: list[tuple[int, int | None, str]], to: str, **kwargs: object) -> None:
        def note() -> None:
            with book.lock:
                book.moved.extend((pk, str(old), str(to)) for pk, _, old in rows)

        transaction.on_commit(note)  # only what committed, as the trigger sees it

    messages_moved.connect(on_move, weak=False, dispatch_uid="race-ledger")
    try:
        yield book
    finally:
        messages_moved.disconnect(dispatch_uid="race-ledger")
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                DROP TRIGGER IF EXISTS race_log_status ON "{table}";
                DROP TRIGGER IF EXISTS race_log_event ON "{events}";
                DROP FUNCTION IF EXISTS race_log_status();
                DROP FUNCTION IF EXISTS race_log_event();
                DROP TABLE IF EXISTS race_status_log;
                DROP TABLE IF EXISTS race_event_log;
                """
            )


def race(racers: list[Callable[[], object]], *, rng: random.Random, spread: float = 0.03) -> list[object]:
    """Run each racer on its own thread (its own database connection), started together, each after
    a random offset below ``spread`` seconds; returns their results. Fails on any error or stall."""
    start = threading.Barrier(len(racers), timeout=WAIT)
    offsets = [rng.uniform(0, spread) for _ in racers]
    out: list[dict] = [{} for _ in racers]

    def run(i: int) -> None:
        try:
            start.wait()
            time.sleep(offsets[i])
            out[i]["result"] = racers[i]()
        except BaseException as exc:  # reported to the test
            out[i]["error"] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(len(racers))]
    for t in threads:
        t.start()
    deadline = time.monotonic() + WAIT
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    assert not any(t.is_alive() for t in threads), "a racer stalled (deadlock or endless wait)"
    errors = [o["error"] for o in out if "error" in o]
    assert not errors, errors
    return [o["result"] for o in out]


def post_report(pk: int, uuid: str, status: str) -> None:
    """The provider's delivery report, through the real signed webhook (which stores it), then a drain."""
    path = f"/webhooks/plivo/{PLIVO_SECRET}/status/{pk}/"
    params = {"MessageUUID": uuid, "Status": status, "To": "1", "From": "14155550100"}
    assert signed_plivo_post(Client(), path, params).status_code == 200
    drain_status_events()


def statuses(ids: list[int]) -> dict[int, str]:
    return dict(Message.objects.filter(pk__in=ids).values_list("pk", "status"))


def sends_by_destination(fake) -> dict[str, list[str]]:
    """Each destination's provider ids, in the order the fake accepted them."""
    out: dict[str, list[str]] = {}
    for m in fake.messages(fields=["dst", "id"]):
        out.setdefault(m["dst"], []).append(m["id"])
    return out


def lose_first_answers(plivo, ids: list[int]) -> dict[int, str]:
    """Send ``ids`` once: the fake accepts and records each, and its answer is lost (``unknown``).
    Returns each row's first provider id."""
    plivo.configure(rate_accept_timeout=1.0, timeout_hold_s=10)
    send_batch(message_ids=ids)
    wait_for(lambda: set(statuses(ids).values()) == {S.UNKNOWN}, timeout=30, message="answers lost")
    plivo.configure(rate_accept_timeout=0.0)
    by_dst = sends_by_destination(plivo)
    first = {pk: by_dst[to][0] for pk, to in Message.objects.filter(pk__in=ids).values_list("pk", "to")}
    assert all(len(by_dst[to]) == 1 for to in Message.objects.filter(pk__in=ids).values_list("to", flat=True))
    return first


def silent_past_the_window(ids: list[int]) -> None:
    """As if the answers were lost longer ago than the provider's window."""
    lost = timezone.now() - timedelta(seconds=sweeper.silence_limit("plivo") + 1)
    Message.objects.filter(pk__in=ids).update(lease_expires_at=lost)


ROUNDS = 24
PER_ROUND = 3


def test_resends_and_late_reports_raced_each_row_takes_one_outcome_and_goes_out_at_most_twice(plivo, rows, ledger):
    """A row that adopted its late report is never sent again; a row sent again holds the new send's
    id and status, never the late report's final status (docs/security.md); nothing stalls."""
    all_ids = rows(ROUNDS * PER_ROUND)
    first = lose_first_answers(plivo, all_ids)
    lost = ledger.mark()
    adopted = resent = 0

    for n in range(ROUNDS):
        rng = random.Random(n)
        ids = all_ids[n * PER_ROUND : (n + 1) * PER_ROUND]
        reported = {pk: rng.choice(sorted(REPORTED)) for pk in ids}
        order = rng.sample(ids, len(ids))
        silent_past_the_window(ids)  # this round's rows only: the sweeps take no other round's

        # Which side tends to lead differs per round (a webhook post takes longer than a sweep).
        sweeps_wait = rng.choice([0.0, 0.02, 0.05, 0.1])

        def sweep() -> tuple[int, int]:
            time.sleep(sweeps_wait)  # noqa: B023
            return sweeper.resend_unreported(now=timezone.now())

        def late_reports() -> None:
            for pk in order:  # noqa: B023  (run within this round)
                post_report(pk, first[pk], reported[pk])  # noqa: B023
                time.sleep(rng.uniform(0, 0.01))  # noqa: B023

        def drain_twice() -> None:
            drain_status_events()
            time.sleep(rng.uniform(0, 0.02))  # noqa: B023
            drain_status_events()

        def resend() -> None:
            time.sleep(rng.uniform(0, 0.03))  # noqa: B023
            send_batch(message_ids=ids)  # noqa: B023  (sends what a sweep made pending by then)

        results = race([sweep, sweep, sweep, late_reports, drain_twice, resend], rng=rng)
        assert sum(again for again, _ in results[:3]) <= len(ids)  # type: ignore[misc]

        # Settle what the race left: pending rows go out, kept reports are read.
        send_batch(message_ids=ids)
        drain_status_events()

        by_dst = sends_by_destination(plivo)
        for row in Message.objects.filter(pk__in=ids):
            sent = by_dst[row.to]
            moves = [(old, new) for _, old, new in ledger.seen([row.pk], after=lost)]
            context = (n, row.pk, reported[row.pk], row.status, row.provider_message_id, sent, moves)
            if row.provider_message_id == first[row.pk]:  # adopted its late report
                adopted += 1
                assert sent == [first[row.pk]], context  # never sent again
                assert row.status == REPORTED[reported[row.pk]], context
                assert moves == [(S.UNKNOWN, REPORTED[reported[row.pk]])], context
            else:  # sent again, once: holds the second send, the late report stored and not applied
                resent += 1
                assert len(sent) == 2 and row.provider_message_id == sent[1], context
                assert (row.status, row.error_code, row.attempts) == (S.QUEUED, sweeper.NO_REPORT, 2), context
                assert moves == [
                    (S.UNKNOWN, S.PENDING),
                    (S.PENDING, S.CLAIMED),
                    (S.CLAIMED, S.SENDING),
                    (S.SENDING, S.QUEUED),
                ], context
        late = ProviderEvent.objects.filter(message_ref__in=[str(pk) for pk in ids])
        assert late.count() == len(ids) and not late.filter(processed_at__isnull=True).exists()

    # The claim (engine._claim) writes pending -> claimed itself: both count as waiting and publish
    # no event. Every other change must be one that move made.
    seen = [m for m in ledger.seen(all_ids) if m[1:] != (S.PENDING, S.CLAIMED)]
    assert Counter(seen) == Counter(ledger.announced(all_ids)), "a status change not made by move"
    assert adopted + resent == len(all_ids)
    assert adopted and resent, (adopted, resent)  # the rounds reached both outcomes
    assert sorted(d["dst"] for d in plivo.duplicates()) == sorted(
        to for to, sent in sends_by_destination(plivo).items() if len(sent) == 2
    )


HAND_BACK_ROUNDS = 15


def test_a_report_handed_back_while_drains_read_it_is_applied_once_and_handed_back_once(plivo, rows, ledger):
    """Sweeps hand stored reports back (``events.reports_heard``) while drains read them. A row that
    can take its report adopts it once and is never sent; a row that cannot (it holds another id) has
    its report handed back once, read once more, and is then sent again once: never re-drained for
    ever, never stuck ``unknown``."""
    all_ids = rows(HAND_BACK_ROUNDS * 4)
    uuid = {pk: f"uuid-{pk}" for pk in all_ids}
    # Each row's report came while it was sending and outwaited the early-report limit: read, not applied.
    Message.objects.filter(pk__in=all_ids).update(status=S.SENDING, attempts=1)
    for pk in all_ids:
        path = f"/webhooks/plivo/{PLIVO_SECRET}/status/{pk}/"
        params = {"MessageUUID": uuid[pk], "Status": "delivered", "To": "1", "From": "14155550100"}
        assert signed_plivo_post(Client(), path, params).status_code == 200
    ProviderEvent.objects.update(received_at=timezone.now() - timedelta(days=1), processed_at=None)
    drain_status_events()
    assert set(statuses(all_ids).values()) == {S.SENDING}
    assert not ProviderEvent.objects.filter(processed_at__isnull=True).exists()
    # Then the rows' answers were lost. Half can take their report; half hold another send's id.
    can_take = all_ids[0::2]
    cannot_take = all_ids[1::2]
    Message.objects.filter(pk__in=can_take).update(status=S.UNKNOWN)
    for pk in cannot_take:
        Message.objects.filter(pk=pk).update(status=S.UNKNOWN, provider_message_id=f"other-{pk}")
    event_of = dict(ProviderEvent.objects.filter(kind=ProviderEvent.Kind.STATUS).values_list("message_ref", "pk"))
    start, announced = ledger.mark(), len(ledger.moved)

    for n in range(HAND_BACK_ROUNDS):
        rng = random.Random(1000 + n)
        ids = all_ids[n * 4 : (n + 1) * 4]
        silent_past_the_window(ids)

        def sweeps() -> None:
            for _ in range(2):
                sweeper.resend_unreported(now=timezone.now())
                time.sleep(rng.uniform(0, 0.01))  # noqa: B023

        def drains() -> None:
            for _ in range(3):
                drain_status_events()
                time.sleep(rng.uniform(0, 0.01))  # noqa: B023

        race([sweeps, sweeps, sweeps, drains, drains], rng=rng, spread=0.02)
        for _ in range(3):  # the next beat ticks: nothing more happens to a settled row
            sweeper.resend_unreported(now=timezone.now())
            drain_status_events()
        send_batch(message_ids=ids)  # the resends go out

        by_dst = sends_by_destination(plivo)
        for row in Message.objects.filter(pk__in=ids):
            event = ProviderEvent.objects.get(pk=event_of[str(row.pk)])
            changes = [what for _, what in ledger.event_changes([event.pk])]
            moves = [(old, new) for _, old, new in ledger.seen([row.pk], after=start)]
            context = (n, row.pk, row.status, row.provider_message_id, row.error_text, changes, moves)
            assert changes == ["read", "handed_back", "read"], context  # the first read was before the race
            assert event.processed_at is not None and event.handed_back_at is not None, context
            if row.pk in can_take:
                assert (row.status, row.provider_message_id) == (S.DELIVERED, uuid[row.pk]), context
                assert moves == [(S.UNKNOWN, S.DELIVERED)], context  # applied once
                assert row.to not in by_dst, context
            else:
                assert (row.status, row.error_code) == (S.QUEUED, sweeper.NO_REPORT), context
                assert f"reports stored, not applicable: {uuid[row.pk]}: sent again" in row.error_text, context
                assert moves == [
                    (S.UNKNOWN, S.PENDING),
                    (S.PENDING, S.CLAIMED),
                    (S.CLAIMED, S.SENDING),
                    (S.SENDING, S.QUEUED),
                ], context
                assert len(by_dst[row.to]) == 1, context  # sent again once

    seen = [m for m in ledger.seen(all_ids, after=start) if m[1:] != (S.PENDING, S.CLAIMED)]
    assert Counter(seen) == Counter(ledger.announced(all_ids, after=announced)), "a status change not made by move"
    assert not plivo.duplicates()
    assert not ProviderEvent.objects.filter(processed_at__isnull=True).exists()
