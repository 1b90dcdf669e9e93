"""Message moved from campaigns to messaging by renaming its table: existing rows keep their ids and links."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("campaigns", "0002_message_due_at_default"), ("relay", "0001_initial")]
AFTER = [("campaigns", "0004_send_window"), ("relay", "0002_message_moved_to_messaging"), ("messaging", "0001_initial")]


@pytest.fixture
def back_to_latest():
    yield
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())  # the rest of the suite runs on the latest schema


@pytest.mark.django_db(transaction=True)
def test_existing_messages_survive_the_move_with_their_ids_and_relations(back_to_latest):
    executor = MigrationExecutor(connection)
    executor.migrate([*BEFORE, ("messaging", None)])
    old = executor.loader.project_state(BEFORE).apps
    user = old.get_model("accounts", "User").objects.create(username="mover")
    campaign = old.get_model("campaigns", "Campaign").objects.create(
        name="Old", body="Hi", created_by_id=user.pk, quiet_hours_start="08:00", quiet_hours_end="21:00"
    )
    message = old.get_model("campaigns", "Message").objects.create(
        campaign_id=campaign.pk, to="+14155550100", status="delivered"
    )

    executor = MigrationExecutor(connection)
    executor.migrate(AFTER)
    new = executor.loader.project_state(AFTER).apps
    moved = new.get_model("messaging", "Message").objects.get(pk=message.pk)
    assert (moved.campaign_id, moved.to, moved.status) == (campaign.pk, "+14155550100", "delivered")
    renamed = new.get_model("campaigns", "Campaign").objects.get(pk=campaign.pk)
    assert (str(renamed.send_window_start), str(renamed.send_window_end)) == ("08:00:00", "21:00:00")
    # The sequence moved with the table: a new row gets the next id, not a clash.
    fresh = new.get_model("messaging", "Message").objects.create(to="+14155550101")
    assert fresh.pk > message.pk
    content_types = new.get_model("contenttypes", "ContentType").objects
    assert content_types.filter(app_label="messaging", model="message").exists()
    assert not content_types.filter(app_label="campaigns", model="message").exists()
