"""An opt-out recorded while a chunk is already on the wire stops the sends not yet made."""

import threading
import time

from django.db import connection

from messaging.engine import send_batch
from messaging.models import Message
from recipients.models import Recipient
from recipients.services import recipient_opt_out
from tests.conftest import aim_plivo


def test_an_opt_out_during_a_chunk_stops_that_number_before_its_request(
    settings, transactional_db, fake_provider, bob, make_sender, make_recipients
):
    aim_plivo(settings, fake_provider)
    settings.SMS_MAX_IN_FLIGHT = 1  # one request at a time: 8 sends take ~0.8 s
    settings.SMS_GROUP_SIZE = 1  # one request per message (groups: tests/messaging/test_multi_destination.py)
    fake_provider.configure(latency_ms=100, callbacks=False)
    people = make_recipients(8)
    sender = make_sender(bob)
    ids = [
        Message.objects.create(
            kind=Message.Kind.SINGLE, recipient=p, to=p.phone, sender=sender.number, provider="plivo", body="hi"
        ).pk
        for p in people
    ]
    last = people[-1]

    def opt_out_soon():
        time.sleep(0.3)
        recipient_opt_out(recipient=Recipient.objects.get(pk=last.pk), channel="sms", evidence="STOP")
        connection.close()

    thread = threading.Thread(target=opt_out_soon)
    thread.start()
    result = send_batch(message_ids=ids)
    thread.join()

    sent_to = {m["dst"] for m in fake_provider.messages(fields=["dst"])}
    assert last.phone.lstrip("+") not in {d.lstrip("+") for d in sent_to}
    assert len(sent_to) == 7 and result.released == 1
    # The released row is skipped, not sent, when it is claimed again.
    send_batch(message_ids=[ids[-1]])
    assert (Message.objects.get(pk=ids[-1]).status, Message.objects.get(pk=ids[-1]).error_text) == (
        "skipped",
        "no consent",
    )
    assert len(fake_provider.messages(fields=["dst"])) == 7
