"""The messages table is partitioned by month: rows go to their month, the exactly-once key holds,
maintenance is idempotent and safe twice at once, and the purge drops whole expired months."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta

import pytest
from django.db import IntegrityError, connection, connections, transaction
from django.utils import timezone

from campaigns.dispatch import materialize_chunk
from campaigns.models import Campaign
from messaging import partitions
from messaging.models import Message, MessageStatus
from messaging.retention import purge_messages
from messaging.services import message_enqueue
from recipients.models import Membership
from relay.models import RelayMessage
from tests.conftest import wait_for

S = MessageStatus
pytestmark = pytest.mark.django_db


def partition_of(message: Message) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT tableoid::regclass::text FROM {partitions.TABLE} WHERE id = %s", [message.pk])
        return cursor.fetchone()[0]


def table_exists(name: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [name])
        return cursor.fetchone()[0]


def old_message(month: date, *, days_old: float, status: str = S.DELIVERED, **fields) -> Message:
    """A message of ``month``'s partition created ``days_old`` days ago (its partition must exist)."""
    fields.setdefault("kind", Message.Kind.SINGLE)
    message = Message.objects.create(to="+14155552671", body="text", status=status, month=month, **fields)
    Message.objects.filter(pk=message.pk).update(created_at=timezone.now() - timedelta(days=days_old))
    return message


def test_a_single_send_goes_to_this_months_partition():
    message = message_enqueue(kind=Message.Kind.SINGLE, to="+14155552671", sender="", provider="", body="Hi")
    message.refresh_from_db()
    this_month = partitions.month_start(timezone.now())
    assert message.month == this_month
    assert partition_of(message) == partitions.partition_name(this_month)


def test_a_campaigns_rows_share_its_launch_month_and_leave_default_when_maintenance_runs(
    bob, make_campaign, make_recipients
):
    make_recipients(3, recipient_list="L")
    launched = datetime(2021, 5, 31, 23, 30, tzinfo=UTC)  # no partition for May 2021
    campaign = make_campaign(bob, lists=["L"])
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.SENDING, launched_at=launched)
    Membership.objects.update(added_at=launched - timedelta(days=1))  # members when it started
    assert len(materialize_chunk(campaign=campaign, list_ids=[campaign.lists.get().pk])) == 3

    rows = list(Message.objects.filter(campaign=campaign))
    assert {m.month for m in rows} == {date(2021, 5, 1)}
    assert {partition_of(m) for m in rows} == {partitions.DEFAULT_PARTITION}  # the safety net took them

    created = partitions.ensure_partitions()
    assert created == ["messaging_message_p2021_05"]
    assert {partition_of(m) for m in rows} == {"messaging_message_p2021_05"}
    assert sorted(Message.objects.filter(campaign=campaign).values_list("pk", flat=True)) == sorted(
        m.pk for m in rows
    )  # moved, not copied: same ids, once


def test_a_second_row_for_the_same_campaign_and_recipient_is_refused(bob, make_campaign, make_recipients):
    (person,) = make_recipients(1, recipient_list="L")
    campaign = make_campaign(bob, lists=["L"])
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.SENDING, launched_at=timezone.now())
    assert len(materialize_chunk(campaign=campaign, list_ids=[campaign.lists.get().pk])) == 1
    Campaign.objects.filter(pk=campaign.pk).update(materialized=False, materialized_through=0)
    assert materialize_chunk(campaign=campaign, list_ids=[campaign.lists.get().pk]) == []  # a relaunch adds nothing
    month = Message.objects.get(campaign=campaign).month
    with pytest.raises(IntegrityError), transaction.atomic():
        Message.objects.create(campaign=campaign, recipient=person, to=person.phone, month=month)
    assert Message.objects.filter(campaign=campaign).count() == 1


def test_maintenance_creates_months_ahead_once():
    now = datetime(2031, 11, 15, tzinfo=UTC)
    first = partitions.ensure_partitions(now=now, ahead=3)
    assert first == [f"messaging_message_p{m}" for m in ("2031_11", "2031_12", "2032_01", "2032_02")]
    assert partitions.ensure_partitions(now=now, ahead=3) == []  # idempotent
    months = [p.month for p in partitions.partitions()]
    assert months == sorted(set(months))


@pytest.mark.django_db(transaction=True)
def test_two_maintenance_runs_at_once_both_finish_and_create_each_month_once():
    now = datetime(2033, 3, 1, tzinfo=UTC)
    start = threading.Barrier(2)
    results: list[list[str]] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            start.wait(timeout=30)
            results.append(partitions.ensure_partitions(now=now, ahead=2))
        except BaseException as error:
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors
    assert sorted(len(r) for r in results) == [0, 3]  # one created all three, the other found them
    assert {p.name for p in partitions.partitions()} >= {
        "messaging_message_p2033_03",
        "messaging_message_p2033_04",
        "messaging_message_p2033_05",
    }


def test_purge_drops_whole_expired_months_and_keeps_newer_months_and_open_messages():
    now = timezone.now()
    this_month = partitions.month_start(now)
    cutoff = now - timedelta(days=62)
    expired_month = partitions.month_start(now - timedelta(days=200))
    open_month = partitions.month_start(now - timedelta(days=150))
    for month in (expired_month, open_month):
        partitions.ensure_partitions(now=datetime(month.year, month.month, 1, tzinfo=UTC), ahead=0)
    gone = [old_message(expired_month, days_old=200 - i) for i in range(3)]
    transcript = RelayMessage.objects.create(
        direction="unmatched",
        outcome="unmatched",
        from_number="+14155550100",
        to_virtual="+14155550101",
        message=gone[0],
    )
    in_flight = old_message(open_month, days_old=150, status=S.UNKNOWN)
    finished_beside_it = old_message(open_month, days_old=150)
    recent = old_message(this_month, days_old=1)

    result = purge_messages(body_cutoff=cutoff, row_cutoff=cutoff, batch=100)

    assert result.partitions_dropped == 1
    assert not table_exists(partitions.partition_name(expired_month))
    assert not Message.objects.filter(pk__in=[m.pk for m in gone]).exists()
    transcript.refresh_from_db()
    assert transcript.message_id is None  # as the relay's on_delete says
    # The month with a message still in flight stays; its finished rows go one by one.
    assert table_exists(partitions.partition_name(open_month))
    assert Message.objects.filter(pk=in_flight.pk).exists()
    assert not Message.objects.filter(pk=finished_beside_it.pk).exists()
    assert result.messages_deleted == 4
    assert Message.objects.filter(pk=recent.pk).exists()
    assert table_exists(partitions.partition_name(this_month))


def test_a_month_whose_campaign_rows_were_created_after_the_cutoff_is_not_dropped():
    now = timezone.now()
    month = partitions.month_start(now - timedelta(days=120))
    partitions.ensure_partitions(now=datetime(month.year, month.month, 1, tzinfo=UTC), ahead=0)
    late = old_message(month, days_old=10)  # e.g. a campaign launched then, sent much later
    cutoff = now - timedelta(days=30)

    result = purge_messages(body_cutoff=cutoff, row_cutoff=cutoff, batch=100)

    assert result.partitions_dropped == 0
    assert Message.objects.filter(pk=late.pk).exists()


def test_beat_runs_maintenance_daily_and_the_task_creates_the_months_ahead():
    from messaging.tasks import maintain_partitions
    from smsportal.celery import app

    assert any(e["task"] == "messaging.maintain_partitions" for e in app.conf.beat_schedule.values())
    maintain_partitions()
    month = partitions.month_start(timezone.now())
    for _ in range(partitions.MONTHS_AHEAD + 1):
        assert table_exists(partitions.partition_name(month))
        month = partitions.next_month(month)


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_starting_worker_creates_the_months_ahead(celery_workers):
    missing = partitions.Partition(
        name=partitions.partition_name(partitions.next_month(partitions.month_start(timezone.now()))),
        month=partitions.next_month(partitions.month_start(timezone.now())),
    )
    with transaction.atomic():
        partitions.drop_partition(missing)  # empty: nothing to move
    assert not table_exists(missing.name)

    celery_workers.start()

    wait_for(lambda: table_exists(missing.name), timeout=120, message=f"{missing.name} created by the worker")


@pytest.mark.django_db(transaction=True)
def test_a_partition_that_outgrew_its_statistics_is_analyzed_so_moves_read_only_their_rows():
    # A month's partition filled by a campaign is looked up by arrays of ids; without statistics the
    # planner read the whole partition for every batch's status move (messaging.partitions).
    month = partitions.month_start(timezone.now())
    name = partitions.partition_name(month)
    with connection.cursor() as cursor:
        cursor.execute(
            f'INSERT INTO {partitions.TABLE} (kind, status, "to", sender, provider, body, media_urls, attempts,'
            " segments, month, created_at, due_at, error_code, error_text, error_permanent, provider_message_id)"
            " SELECT 'single', 'queued', '+1415555' || lpad(g::text, 4, '0'), '', 'plivo', 'x', '[]', 1, 1, %s,"
            " now(), now(), '', '', false, '' FROM generate_series(1, 5000) g",
            [month],
        )
        cursor.execute("SELECT pg_stat_force_next_flush()")

    def analyzed() -> list[str]:
        return partitions.refresh_statistics()

    assert wait_for(analyzed, timeout=10, message="the grown partition analyzed") == [name]
    assert partitions.refresh_statistics() == []  # its statistics now describe it

    # The planner now knows an id matches one row: 50 ids, about 50 rows (it guessed half the
    # partition before, and read all of it), so at scale it looks them up in the index.
    ids = list(Message.objects.filter(month=month).order_by("id").values_list("pk", flat=True)[:50])
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) SELECT id FROM {name} WHERE id = ANY(%s::bigint[])", [ids])
        plan = cursor.fetchone()[0][0]["Plan"]
    assert plan["Plan Rows"] <= 2 * len(ids), plan
