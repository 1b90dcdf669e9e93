"""A request hung until its read timeout holds neither the other outcomes of its batch nor the next batch."""

from __future__ import annotations

from messaging.engine import send_batch
from messaging.models import Message
from tests.conftest import wait_for


def test_a_hung_request_is_recorded_later_and_the_rest_of_the_batch_at_once(
    settings, transactional_db, fake_provider, bob, make_sender, make_recipients
):
    cfg = fake_provider.config
    settings.SMS_BACKEND = "providers.backends.plivo.SMSBackend"
    settings.PLIVO_API_URL, settings.PLIVO_AUTH_ID, settings.PLIVO_AUTH_TOKEN = (
        fake_provider.url,
        cfg.plivo_auth_id,
        cfg.plivo_auth_token,
    )
    settings.SMS_HTTP_TIMEOUT = 6.0  # far longer than the batch's wait for stragglers
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

    hung = fake_provider.stats()["fault_timeout"]
    assert hung > 0
    statuses = list(Message.objects.filter(pk__in=ids).values_list("status", flat=True))
    # Returned before the hung requests timed out: the others are recorded, the hung ones still
    # ``sending`` (their outcome is not known yet, so they are neither released nor sent again).
    assert result.accepted == statuses.count("queued") == 40 - hung
    assert statuses.count("sending") == hung
    # Once they time out, the process's background recorder records them: a transient failure, retried.
    wait_for(
        lambda: not Message.objects.filter(pk__in=ids, status="sending").exists(),
        timeout=30,
        message="the hung requests recorded",
    )
    retried = Message.objects.filter(pk__in=ids, status="pending")
    assert retried.count() == hung
    assert set(retried.values_list("error_code", flat=True)) == {"read_timeout"}
    assert len(fake_provider.messages(fields=["dst"])) == 40 - hung  # a refused send is not recorded by the fake
