"""A send whose checks are slow after it took its turn must not land too close to the next send.

Found by ``python -m bench pacing`` (issue 21): the guard took a rate turn, then re-read consent from
the database; when that query was slow the request left late, while the next send, on time, left a
second after its own turn, so the provider saw two sends of a 1 msg/s number 0.72 s apart. Real
Redis schedule, real database; the query is made slow by a lock another connection holds.
"""

import asyncio
import itertools
import threading
import time

import pytest
import redis
from django.conf import settings
from django.db import connection, transaction

from messaging.engine import ConsentRecheck, _send_guard
from messaging.models import Message
from messaging.optouts import RecentOptOuts
from providers.backends.base import OutboundSMS
from recipients.models import Recipient

SENDER = "+14155550177"
RATE = 2.0  # sends 0.5 s apart


def _hold_lock(held: threading.Event, seconds: float) -> None:
    """ACCESS EXCLUSIVE on the messages table: the consent re-check's query waits it out."""
    try:
        with transaction.atomic():
            connection.cursor().execute("LOCK TABLE messaging_message IN ACCESS EXCLUSIVE MODE")
            held.set()
            time.sleep(seconds)
    finally:
        connection.close()


@pytest.mark.django_db(transaction=True)  # the re-check reads from its own thread
def test_a_send_delayed_by_its_checks_takes_a_fresh_turn():
    redis.Redis.from_url(settings.REDIS_URL).delete(f"smsportal:pace:number:{SENDER}")
    messages = []
    for i in range(3):
        r = Recipient.objects.create(phone=f"+1415555019{i}", consent_status="opted_in")
        messages.append(Message.objects.create(kind="campaign", recipient=r, to=r.phone))
    ids = [m.pk for m in messages]
    # The second send's re-check is due (older than 0.3 s) and waits for the lock until ~0.9 s;
    # the third's turn comes at 1.0 s, just after that query.
    recheck = ConsentRecheck(ids, max_age=0.3)
    guard = _send_guard({SENDER: RATE}, {}, {}, {}, RecentOptOuts(since=time.time()), recheck)
    held = threading.Event()
    locker = threading.Thread(target=_hold_lock, args=(held, 0.9))
    locker.start()
    assert held.wait(10)

    async def send_all() -> list[float]:
        sent_at: list[float] = []

        async def one(pk: int) -> None:
            assert await guard(OutboundSMS(ref=str(pk), to="+14155550100", sender=SENDER, body="hi"))
            sent_at.append(time.monotonic())  # where the request would leave

        await asyncio.gather(*(one(pk) for pk in ids))
        return sent_at

    try:
        sent_at = sorted(asyncio.run(send_all()))
    finally:
        locker.join()
    gaps = [round(b - a, 3) for a, b in itertools.pairwise(sent_at)]
    # 0.5 s apart on the schedule; the slow check made one 0.1 s before the fix. The margin
    # (0.15 s) is for this process's own scheduling on a busy machine, far from either.
    assert min(gaps) >= 1 / RATE - 0.15, gaps
