"""Migration 0005 converts a populated messages table into the partitioned one, and back."""

from datetime import UTC, date, datetime

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("messaging", "0004_message_created_at_brin_for_retention"), ("relay", "0003_provider_from_registry")]
AFTER = [("messaging", "0005_message_partitioned_by_month")]


def with_other_apps_latest(targets):
    """``targets`` plus every other app at its latest migration (the state of its tables in the database)."""
    executor = MigrationExecutor(connection)
    apps = {app for app, _ in targets}
    return [*targets, *(node for node in executor.loader.graph.leaf_nodes() if node[0] not in apps)]


@pytest.fixture
def back_to_latest():
    yield
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())  # the rest of the suite runs on the latest schema


def partitions_of_table() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'messaging_message'::regclass ORDER BY 1"
        )
        return [row[0] for row in cursor.fetchall()]


@pytest.mark.django_db(transaction=True)
def test_existing_messages_move_into_their_months_with_their_ids_and_links(back_to_latest):
    executor = MigrationExecutor(connection)
    before = with_other_apps_latest(BEFORE)
    executor.migrate(before)
    old = executor.loader.project_state(before).apps
    user = old.get_model("accounts", "User").objects.create(username="mover")
    launched = datetime(2025, 3, 31, 23, 0, tzinfo=UTC)
    campaign = old.get_model("campaigns", "Campaign").objects.create(
        name="Old", body="Hi", created_by_id=user.pk, launched_at=launched
    )
    person = old.get_model("recipients", "Recipient").objects.create(phone="+14155550100")
    Message = old.get_model("messaging", "Message")
    sent_in_april = Message.objects.create(
        campaign_id=campaign.pk, recipient_id=person.pk, to=person.phone, status="delivered"
    )
    Message.objects.filter(pk=sent_in_april.pk).update(created_at=datetime(2025, 4, 2, tzinfo=UTC))
    single = Message.objects.create(kind="single", to="+14155550101", status="delivered")
    Message.objects.filter(pk=single.pk).update(created_at=datetime(2025, 7, 2, tzinfo=UTC))
    transcript = old.get_model("relay", "RelayMessage").objects.create(
        direction="unmatched",
        outcome="unmatched",
        from_number="+14155550102",
        to_virtual="+14155550103",
        message_id=single.pk,
    )

    executor = MigrationExecutor(connection)
    after = with_other_apps_latest(AFTER)
    executor.migrate(after)
    new = executor.loader.project_state(after).apps
    Message = new.get_model("messaging", "Message")
    # A campaign's rows go to its launch month, whenever they were created; other rows to their own month.
    assert Message.objects.get(pk=sent_in_april.pk).month == date(2025, 3, 1)
    assert Message.objects.get(pk=single.pk).month == date(2025, 7, 1)
    assert {"messaging_message_p2025_03", "messaging_message_p2025_07", "messaging_message_default"} <= set(
        partitions_of_table()
    )
    assert new.get_model("relay", "RelayMessage").objects.get(pk=transcript.pk).message_id == single.pk
    fresh = Message.objects.create(to="+14155550104")
    assert fresh.pk > single.pk  # the id sequence carried on
    with pytest.raises(IntegrityError), transaction.atomic():
        Message.objects.create(campaign_id=campaign.pk, recipient_id=person.pk, to=person.phone, month=date(2025, 3, 1))

    executor = MigrationExecutor(connection)
    executor.migrate(before)  # and back: an ordinary table with the same rows
    assert partitions_of_table() == []
    back = executor.loader.project_state(before).apps.get_model("messaging", "Message")
    assert sorted(back.objects.values_list("pk", flat=True)) == sorted([sent_in_april.pk, single.pk, fresh.pk])
