"""A chunk held back long (rate limit, Redis outage) asks the database again before each send.

The Redis opt-out signal can be lost in a Redis restart; the database cannot lose an opt-out.
"""

import asyncio

import pytest

from messaging.engine import ConsentRecheck
from messaging.models import Message
from recipients.models import Recipient
from recipients.services import recipient_opt_out

pytestmark = pytest.mark.django_db(transaction=True)  # the recheck reads from its own thread


def _messages(kind: str) -> tuple[Message, Message]:
    stays = Recipient.objects.create(phone="+14155550181", consent_status="opted_in")
    leaves = Recipient.objects.create(phone="+14155550182", consent_status="opted_in")
    return (
        Message.objects.create(kind=kind, recipient=stays, to=stays.phone),
        Message.objects.create(kind=kind, recipient=leaves, to=leaves.phone),
    )


@pytest.mark.parametrize("kind", ["campaign", "single", "relay"])
def test_an_opt_out_after_the_chunk_started_stops_its_send_once_the_chunk_is_old(kind):
    stays, leaves = _messages(kind)
    recheck = ConsentRecheck([stays.pk, leaves.pk], max_age=0.0)
    recipient_opt_out(recipient=leaves.recipient, channel="sms", evidence="STOP")  # and Redis forgot it

    assert asyncio.run(recheck.allows(leaves.pk)) is False
    assert asyncio.run(recheck.allows(stays.pk)) is True


def test_a_young_chunk_does_not_ask_the_database_again():
    stays, leaves = _messages("campaign")
    recheck = ConsentRecheck([stays.pk, leaves.pk], max_age=3600)
    recipient_opt_out(recipient=leaves.recipient, channel="sms", evidence="STOP")
    # Within max_age the chunk-start check (and the Redis signal) stand; no query per message.
    assert asyncio.run(recheck.allows(leaves.pk)) is True
