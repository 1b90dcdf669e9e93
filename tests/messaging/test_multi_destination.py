"""Plivo multi-destination sends: first sends of identical content share one request (``dst`` joined
with ``<``), each row still gets its own uuid, guard, outcome and delivery report. Over real HTTP to
the fake provider, with real PostgreSQL and Redis."""

from __future__ import annotations

import threading
from datetime import timedelta

import httpx
import pytest
from django.core.cache import cache
from django.db import connection
from django.utils import timezone

from messaging import failover
from messaging.engine import send_batch
from messaging.models import Message, MessageStatus
from providers.backends import get_backend
from providers.backends.base import OutboundSMS
from providers.backends.plivo import group_message_ids
from providers.errors import InvalidRecipient, OutcomeUnknown
from providers.models import ProviderEvent
from providers.refs import group_members, group_ref
from providers.tasks import drain_status_events
from recipients.services import recipient_opt_out
from tests.conftest import aim_plivo, wait_for
from tests.providers.conftest import PLIVO_SECRET, signed_plivo_post

S = MessageStatus
PLIVO = "providers.backends.plivo.SMSBackend"


@pytest.fixture
def plivo(settings, fake_provider):
    aim_plivo(settings, fake_provider)
    settings.PLIVO_WEBHOOK_SECRET = PLIVO_SECRET
    settings.PUBLIC_BASE_URL = "https://sms.example.com"
    settings.SMS_GROUP_SIZE = 5
    fake_provider.configure(callbacks=False)
    return fake_provider


@pytest.fixture
def rows(bob, make_sender, make_recipients):
    """``rows(n, body=...)``: n single messages from one unlimited Plivo number, one recipient each."""
    sender = make_sender(bob)

    def make(n: int, *, body: str = "Sale today", start: int | None = None) -> list[int]:
        people = make_recipients(n, start=start)
        return [
            Message.objects.create(
                kind=Message.Kind.SINGLE, recipient=p, to=p.phone, sender=sender.number, provider="plivo", body=body
            ).pk
            for p in people
        ]

    return make


def requests(fake) -> int:
    return fake.stats()["requests"]


def at_fake(fake) -> list[str]:
    return sorted(m["dst"] for m in fake.messages(fields=["dst"]))


def statuses(ids: list[int]) -> dict[int, str]:
    return dict(Message.objects.filter(pk__in=ids).values_list("pk", "status"))


# -- grouping and uuid-to-row mapping -------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_identical_first_sends_share_requests_and_each_row_gets_its_own_uuid(plivo, rows):
    same = rows(12)
    personal = [rows(1, body=f"Hi P{i}", start=100 + i)[0] for i in range(2)]  # rendered per person

    send_batch(message_ids=same + personal)

    wait_for(lambda: set(statuses(same + personal).values()) == {S.QUEUED}, timeout=30, message="all accepted")
    assert requests(plivo) == 3 + 2  # 12 in groups of at most 5; the personal ones alone
    by_dst = {m["dst"]: m for m in plivo.messages(fields=["dst", "id", "url"])}
    assert len(by_dst) == 14 and not plivo.duplicates()
    for to, uuid in Message.objects.filter(pk__in=same + personal).values_list("to", "provider_message_id"):
        assert uuid and by_dst[to]["id"] == uuid  # the uuid Plivo gave that destination, on its own row
    grouped = {by_dst[to]["url"] for to in Message.objects.filter(pk__in=same).values_list("to", flat=True)}
    assert len(grouped) == 3
    assert all(len(group_members(url.rstrip("/").rsplit("/", 1)[1]) or []) > 1 for url in grouped)


def test_groups_hold_identical_content_and_each_destination_once(settings):
    settings.SMS_GROUP_SIZE = 3
    backend = get_backend(PLIVO)

    def sms(ref: int, to: int, body: str = "x", sender: str = "+14155550100") -> OutboundSMS:
        return OutboundSMS(ref=str(ref), to=f"+1415555{to:04d}", sender=sender, body=body, provider="plivo")

    messages = [sms(1, 1), sms(2, 2), sms(3, 1), sms(4, 3, body="y"), sms(5, 4), sms(6, 5), sms(7, 6, sender="+1")]
    units = backend.groups(messages, {m.ref for m in messages} - {"5"})

    assert [[m.ref for m in u] for u in units] == [["1", "2"], ["3", "6"], ["4"], ["5"], ["7"]]
    flowroute = backend.groups(
        [OutboundSMS(ref="9", to="+14155550001", sender="+1", body="x", provider="flowroute")] * 2, {"9"}
    )
    assert [len(u) for u in flowroute] == [1, 1]  # Flowroute: one request per message
    assert get_backend("providers.backends.flowroute.SMSBackend").group_size("flowroute") == 1


def test_a_group_reference_fits_a_stored_report_however_scattered_its_ids(settings):
    settings.SMS_GROUP_SIZE = 50
    backend = get_backend(PLIVO)
    messages = [
        OutboundSMS(ref=str(10_000_000 + 7 * i), to=f"+1415555{i:04d}", sender="+1", body="x", provider="plivo")
        for i in range(50)
    ]
    units = backend.groups(messages, {m.ref for m in messages})

    assert sum(len(u) for u in units) == 50 and len(units) > 1
    for unit in (u for u in units if len(u) > 1):
        ref = group_ref(m.ref for m in unit)
        assert len(ref) <= 64 and group_members(ref) == sorted(m.ref for m in unit)
    assert group_ref(["7", "5", "6", "9"]) == "5-7.9" and group_members("42") is None


# -- partial answers --------------------------------------------------------------------------------


def _answer(body: dict) -> httpx.Response:
    return httpx.Response(202, json=body)


def test_uuids_map_to_destinations_only_when_they_fit_exactly():
    three = [OutboundSMS(ref=str(i), to=f"+1415555000{i}", sender="+1", body="x") for i in (1, 2, 3)]

    ids = group_message_ids(_answer({"message_uuid": ["a", "b"], "invalid_number": ["14155550002"]}), three)
    assert (ids["1"], ids["3"]) == ("a", "b") and isinstance(ids["2"], InvalidRecipient)

    short = group_message_ids(_answer({"message_uuid": ["a", "b"]}), three)  # which one lacks an id is unknown
    assert all(isinstance(v, OutcomeUnknown) for v in short.values())


@pytest.mark.django_db(transaction=True)
def test_an_accepted_group_without_enough_uuids_leaves_its_rows_to_their_reports(plivo, rows, settings):
    """Not retried (it may have been accepted), not guessed: ``unknown`` until a report adopts each."""
    ids = rows(3)
    plivo.configure(rate_accept_drop=1.0)  # accepted and recorded, then the connection closes unanswered

    send_batch(message_ids=ids)

    wait_for(lambda: set(statuses(ids).values()) == {S.UNKNOWN}, timeout=30, message="rows unknown")
    assert len(at_fake(plivo)) == 3 and requests(plivo) == 1


# -- the per-message guard ----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_an_opt_out_while_the_group_waits_drops_only_that_destination(plivo, rows, settings):
    settings.SMS_MAX_IN_FLIGHT = 1  # the second group waits for the first one's answer
    plivo.configure(latency_ms=1500)
    ids = rows(10)
    second = Message.objects.filter(pk__in=ids).order_by("pk")[7]

    def send() -> None:
        try:
            send_batch(message_ids=ids)
        finally:
            connection.close()

    worker = threading.Thread(target=send)
    worker.start()
    wait_for(lambda: requests(plivo) >= 1, timeout=20, message="the first group on the wire")
    recipient_opt_out(recipient=second.recipient, channel="sms", evidence="STOP")
    worker.join(30)

    wait_for(lambda: requests(plivo) == 2 and len(at_fake(plivo)) == 9, timeout=20, message="both groups")
    assert second.to not in at_fake(plivo)
    wait_for(lambda: S.SENDING not in statuses(ids).values(), timeout=30, message="outcomes recorded")
    after = statuses(ids)
    assert after.pop(second.pk) in (S.PENDING, S.SKIPPED)  # never sent; the next claim skips it for consent
    assert set(after.values()) == {S.QUEUED}


# -- lost outcomes and errors -------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_hung_group_request_makes_all_its_rows_unknown_and_none_is_sent_twice(plivo, rows, settings):
    settings.SMS_HTTP_TIMEOUT = 1.5
    plivo.configure(rate_accept_timeout=1.0, timeout_hold_s=10)  # accepted, then the answer is held
    ids = rows(10)

    send_batch(message_ids=ids)
    wait_for(lambda: set(statuses(ids).values()) == {S.UNKNOWN}, timeout=30, message="every row unknown")
    assert set(Message.objects.filter(pk__in=ids).values_list("error_code", flat=True)) == {"read_timeout"}

    Message.objects.filter(pk__in=ids).update(due_at=timezone.now() - timedelta(seconds=1))
    again = send_batch(message_ids=ids)  # a redelivered task, or the sweeper's dispatch

    assert again.claimed == 0
    assert requests(plivo) == 2 and len(at_fake(plivo)) == 10 and not plivo.duplicates()


@pytest.mark.django_db(transaction=True)
def test_a_5xx_on_a_group_is_retried_exactly_once_per_row(plivo, rows, settings):
    cache.clear()
    ids = rows(10)
    plivo.configure(rate_5xx=1.0)

    send_batch(message_ids=ids)
    wait_for(lambda: set(statuses(ids).values()) == {S.PENDING}, timeout=30, message="all ten to be retried")
    assert requests(plivo) == 2 and at_fake(plivo) == []
    # Provider health counts requests: two refused groups are two failures, not ten in a row.
    assert sum(cache.get(f"{key}:bad") or 0 for key in failover._keys("plivo")) == 2

    plivo.configure(rate_5xx=0.0)
    Message.objects.filter(pk__in=ids).update(due_at=timezone.now() - timedelta(seconds=1))
    send_batch(message_ids=ids)

    wait_for(lambda: set(statuses(ids).values()) == {S.QUEUED}, timeout=30, message="all ten accepted")
    assert requests(plivo) == 2 + 10  # a row that failed once goes on its own
    assert len(at_fake(plivo)) == 10 and len(set(at_fake(plivo))) == 10 and not plivo.duplicates()
    assert set(Message.objects.filter(pk__in=ids).values_list("attempts", flat=True)) == {2}


# -- delivery reports ---------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_delivery_reports_settle_each_row_of_a_group(plivo, rows, settings, live_server):
    settings.PUBLIC_BASE_URL = live_server.url
    plivo.configure(callbacks=True, callback_delay_s=0.05, callback_concurrency=4, callback_retries=3)
    ids = rows(7)

    send_batch(message_ids=ids)

    def settled() -> bool:
        drain_status_events()
        return set(statuses(ids).values()) == {S.DELIVERED}

    wait_for(settled, timeout=60, message="every row delivered")
    assert requests(plivo) == 2
    refs = set(ProviderEvent.objects.values_list("message_ref", flat=True))
    assert refs == {str(i) for i in ids}  # each report stored under its own message


@pytest.mark.django_db
def test_a_report_naming_a_group_is_stored_for_the_member_with_its_destination(client, settings, rows):
    settings.PLIVO_AUTH_TOKEN = "fake-plivo-auth-token"
    settings.PLIVO_WEBHOOK_SECRET = PLIVO_SECRET
    settings.PUBLIC_BASE_URL = "https://sms.example.com"
    ids = rows(3)
    Message.objects.filter(pk__in=ids).update(status=S.UNKNOWN)  # the group's answer was lost
    target = Message.objects.get(pk=ids[1])
    path = f"/webhooks/plivo/{PLIVO_SECRET}/status/{group_ref(str(i) for i in ids)}/"
    params = {"MessageUUID": "u-2", "Status": "delivered", "To": target.to.lstrip("+"), "From": "14155550100"}

    assert signed_plivo_post(client, path, params).status_code == 200
    assert signed_plivo_post(client, path, {**params, "To": "14155559999"}).status_code == 400  # not in the group
    drain_status_events()

    target.refresh_from_db()
    assert (target.status, target.provider_message_id) == (S.DELIVERED, "u-2")  # adopted by its own report
    assert set(statuses([ids[0], ids[2]]).values()) == {S.UNKNOWN}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("error", ["invalid destination number", "the recipient has opted out (STOP)"])
def test_a_group_refused_for_one_destination_sends_each_again_alone(plivo, rows, error):
    """Which destination it was is not ours to guess: none is failed or opted out for another's refusal."""
    ids = rows(4)
    bad = Message.objects.filter(pk__in=ids).order_by("pk")[2]
    plivo.configure(fail_numbers={bad.to: {"http": 400, "error": error}})

    send_batch(message_ids=ids)
    wait_for(lambda: set(statuses(ids).values()) == {S.PENDING}, timeout=30, message="all four to be retried")
    assert requests(plivo) == 1 and at_fake(plivo) == []
    Message.objects.filter(pk__in=ids).update(due_at=timezone.now() - timedelta(seconds=1))
    send_batch(message_ids=ids)

    wait_for(lambda: S.SENDING not in statuses(ids).values(), timeout=30, message="outcomes recorded")
    after = statuses(ids)
    assert after.pop(bad.pk) == S.FAILED and set(after.values()) == {S.QUEUED}
    assert requests(plivo) == 1 + 4 and len(at_fake(plivo)) == 3
    opted_out = Message.objects.filter(pk__in=ids, recipient__consent_status="opted_out")
    assert list(opted_out.values_list("pk", flat=True)) == ([bad.pk] if "STOP" in error else [])
