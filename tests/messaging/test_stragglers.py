"""A request hung until its read timeout holds neither the other outcomes of its batch nor the next batch."""

from __future__ import annotations

from messaging.engine import send_batch
from messaging.models import Message
from tests.conftest import aim_plivo, wait_for


def test_a_hung_request_is_recorded_later_and_the_rest_of_the_batch_at_once(
    settings, transactional_db, fake_provider, bob, make_sender, make_recipients
):
    aim_plivo(settings, fake_provider)
    settings.SMS_GROUP_SIZE = 1  # one request per message (groups: tests/messaging/test_multi_destination.py)
    settings.SMS_HTTP_TIMEOUT = 8.0  # far longer than the batch's wait for stragglers, even on a busy machine
    fake_provider.configure(rate_timeout=0.1, timeout_hold_s=30, seed=5, callbacks=False)
    people = make_recipients(40)
    sender = make_sender(bob)
    ids = [
        Message.objects.create(
            kind=Message.Kind.SINGLE, recipient=p, to=p.phone, sender=sender.number, provider="plivo", body="hi"
        ).pk
        for p in people
    ]

    result = send_batch(message_ids=ids)

    statuses = dict(Message.objects.filter(pk__in=ids).values_list("pk", "status"))
    in_flight = {pk for pk, status in statuses.items() if status == "sending"}
    # Returned before the hung requests timed out: what the batch recorded is in the database, the
    # rest still ``sending`` (their outcome is not known yet, so neither released nor sent again).
    # How many besides the hung ones came back within the batch's wait depends on the machine's
    # load: those that did not are recorded by the background recorder, like the hung ones.
    assert list(statuses.values()).count("queued") == result.accepted
    assert len(in_flight) == 40 - result.accepted
    # Once they time out, the process's background recorder records them: a lost answer (the request
    # reached the provider, which may have accepted it), so ``unknown``, never sent again at once.
    wait_for(
        lambda: not Message.objects.filter(pk__in=ids, status="sending").exists(),
        timeout=60,
        message="the hung requests recorded",
    )
    stats = fake_provider.stats()
    hung = stats["fault_timeout"]
    assert hung > 0
    outcome = sorted(Message.objects.filter(pk__in=ids).values_list("pk", "status", "error_code", "error_text"))
    assert Message.objects.filter(pk__in=ids, status="queued").count() == 40 - hung, (result, stats, outcome)
    lost = Message.objects.filter(pk__in=ids, status="unknown")
    assert lost.count() == hung
    assert set(lost.values_list("pk", flat=True)) <= in_flight  # the batch did not wait for them
    assert set(lost.values_list("error_code", flat=True)) == {"read_timeout"}
    assert len(fake_provider.messages(fields=["dst"])) == 40 - hung  # a refused send is not recorded by the fake
