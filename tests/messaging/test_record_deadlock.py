"""The send path's record step under a lock-order conflict: it retries the statement, never drops the batch."""

from __future__ import annotations

import logging
import threading

import psycopg
import pytest
from django.conf import settings
from django.utils import timezone

from messaging.bulk import bulk_set
from messaging.models import Message


def _dsn() -> str:
    db = settings.DATABASES["default"]
    return f"host={db['HOST']} port={db['PORT']} user={db['USER']} dbname={db['NAME']}"


@pytest.mark.django_db(transaction=True)
def test_recording_outcomes_retries_a_deadlock_instead_of_abandoning_the_batch(caplog):
    first, second = (
        Message.objects.create(kind=Message.Kind.SINGLE, to=f"+1415555{2800 + i}", body="hi", status="sending").pk
        for i in range(2)
    )
    holding, done = threading.Event(), threading.Event()

    def other_writer() -> None:
        # Locks the rows in the opposite order, and is slow to notice the deadlock: the record
        # step (which locks ``first`` then waits for ``second``) is the one PostgreSQL aborts.
        with psycopg.connect(_dsn()) as conn, conn.cursor() as cur:
            cur.execute("SET LOCAL deadlock_timeout = '10s'")
            cur.execute("SELECT id FROM messaging_message WHERE id = %s FOR UPDATE", [second])
            holding.set()
            threading.Event().wait(0.3)  # the record step now holds ``first`` and waits for ``second``
            cur.execute("UPDATE messaging_message SET error_text = 'drain' WHERE id = %s", [first])
        done.set()

    thread = threading.Thread(target=other_writer)
    thread.start()
    holding.wait(5)
    now = timezone.now()
    with caplog.at_level(logging.WARNING):
        bulk_set(
            [{"id": i, "provider_message_id": f"pm-{i}", "sent_at": now} for i in (first, second)],
            ["provider_message_id", "sent_at"],
        )
    thread.join(15)

    assert done.is_set()
    assert "bulk_set: DeadlockDetected; retry 1" in caplog.text
    rows = dict(Message.objects.filter(pk__in=[first, second]).values_list("pk", "provider_message_id"))
    assert rows == {first: f"pm-{first}", second: f"pm-{second}"}  # recorded all the same
    assert Message.objects.get(pk=first).error_text == "drain"  # and the other writer's work stands
