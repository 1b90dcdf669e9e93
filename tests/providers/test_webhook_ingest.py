"""Issue 21, webhooks: the ingest path's shared INSERT, its form parser and its nonce write.

Concurrent callbacks of one process share one INSERT and one COMMIT; nobody is answered before
the transaction holding its report has committed. Real PostgreSQL, real Redis, real threads.
"""

from __future__ import annotations

import threading
import time
from urllib.parse import urlencode

import psycopg
import pytest
from django.conf import settings as django_settings
from django.db import DatabaseError, connection
from django.test import RequestFactory
from redis.connection import Connection

from devtools.fake_provider.plivo import plivo_signature_headers
from providers import events
from providers.events import record_status_events
from providers.models import ProviderEvent
from providers.status import DeliveryStatus, StatusEvent
from providers.webhooks.base import MalformedWebhook, form_params
from providers.webhooks.replay import _key, _set_nx_ex
from tests.providers.conftest import PLIVO_SECRET, PLIVO_TOKEN

BASE = "https://sms.example.com"


def report(ref: int, **kw) -> StatusEvent:
    fields = {"provider": "plivo", "message_ref": str(ref), "status": DeliveryStatus.DELIVERED}
    return StatusEvent(**{**fields, **kw})


def stored_refs() -> list[str]:
    """Committed rows only: read on a connection of its own."""
    params = connection.get_connection_params()
    with psycopg.connect(**params) as other:
        rows = other.execute("SELECT message_ref FROM providers_providerevent ORDER BY message_ref::bigint").fetchall()
    return [r[0] for r in rows]


def run_while_the_table_is_locked(calls: list, queued: int) -> tuple[dict[int, BaseException | None], list[int]]:
    """Start one thread per call while another session holds the table; release it once the first
    caller is inside its INSERT and ``queued`` more wait behind it. Returns each call's error and the
    sizes of the INSERTs made."""
    sizes: list[int] = []
    real_insert = events._insert_rows

    def counting_insert(rows):
        sizes.append(len(rows))
        real_insert(rows)

    errors: dict[int, BaseException | None] = {}

    def call(i: int, fn) -> None:
        try:
            fn()
            errors[i] = None
        except BaseException as exc:  # collected for the assertions
            errors[i] = exc
        finally:
            connection.close()

    params = connection.get_connection_params()
    events._insert_rows = counting_insert
    try:
        with psycopg.connect(**params) as locker:
            locker.execute("LOCK TABLE providers_providerevent IN SHARE MODE")  # INSERTs wait for it
            threads = [threading.Thread(target=call, args=(i, fn)) for i, fn in enumerate(calls)]
            for t in threads:
                t.start()
                if t is threads[0]:
                    deadline = time.monotonic() + 10
                    while not sizes and time.monotonic() < deadline:  # the first caller leads
                        time.sleep(0.01)
            deadline = time.monotonic() + 10
            while len(events._group_commit._queue) < queued and time.monotonic() < deadline:
                time.sleep(0.01)
            assert len(events._group_commit._queue) == queued
            assert not errors  # nobody answered while its report was not committed
        # the lock is released with the locker's transaction
        for t in threads:
            t.join(10)
    finally:
        events._insert_rows = real_insert
    return errors, sizes


def test_concurrent_reports_share_one_insert_and_each_caller_returns_once_its_row_is_committed(transactional_db):
    calls = [lambda i=i: record_status_events(events=[report(i + 1)]) for i in range(12)]

    errors, sizes = run_while_the_table_is_locked(calls, queued=11)

    assert errors == dict.fromkeys(range(12))
    assert sizes == [1, 11]  # the leader's own row, then everyone who queued behind it, together
    assert stored_refs() == [str(i + 1) for i in range(12)]


def test_a_failed_shared_insert_fails_every_caller_in_it_and_stores_none_of_them(transactional_db):
    bad = report(99, provider="x" * 30)  # the column holds 20
    calls = [lambda: record_status_events(events=[report(1)])]
    calls += [lambda i=i: record_status_events(events=[bad if i == 3 else report(i)]) for i in range(2, 6)]

    errors, sizes = run_while_the_table_is_locked(calls, queued=4)

    assert sizes == [1, 4]
    assert errors[0] is None
    assert all(isinstance(errors[i], DatabaseError) for i in range(1, 5))
    assert stored_refs() == ["1"]
    record_status_events(events=[report(7)])  # the next one is stored as usual
    assert stored_refs() == ["1", "7"]


def test_a_report_inside_a_transaction_is_part_of_it(db):
    from django.db import transaction

    with transaction.atomic():
        record_status_events(events=[report(5)])
        assert ProviderEvent.objects.filter(message_ref="5").exists()
        assert stored_refs() == []  # not committed yet: not through the shared INSERT


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"Status=delivered&To=14155550100&Media=a&Media=b&Blank=&Plus=a+b%20c&Pct=%C3%BC", None),
        (b"Status=sent&Note=%FC", "application/x-www-form-urlencoded; charset=utf-8"),
        (b"Status=sent&Raw=\xfc", None),  # not UTF-8: Django falls back to Latin-1
        (b"", None),
        (b"a&b=&=c&&d=1;e=2", None),
    ],
)
def test_urlencoded_fields_are_what_djangos_querydict_reads(body, content_type):
    content_type = content_type or "application/x-www-form-urlencoded"
    request = RequestFactory().post("/x/", data=body, content_type=content_type)
    expected_request = RequestFactory().post("/x/", data=body, content_type=content_type)
    expected = {k: (v[0] if len(v) == 1 else v) for k, v in expected_request.POST.lists()}

    assert form_params(request) == expected
    assert list(form_params(request)) == list(expected)  # same order too


def test_a_urlencoded_body_in_another_charset_is_a_malformed_webhook():
    content_type = "application/x-www-form-urlencoded; charset=iso-8859-1"
    request = RequestFactory().post("/x/", data=b"Status=sent", content_type=content_type)

    with pytest.raises(MalformedWebhook):
        form_params(request)


def test_too_many_urlencoded_fields_is_a_malformed_webhook(settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 5
    body = urlencode({f"k{i}": "v" for i in range(6)}).encode()
    request = RequestFactory().post("/x/", data=body, content_type="application/x-www-form-urlencoded")

    with pytest.raises(MalformedWebhook):
        form_params(request)


def test_the_nonce_set_is_redis_pys_own_command():
    key = ":1:webhooks:replay:plivo-v2:" + "ä" * 3

    assert _set_nx_ex(key, 2592000) == b"".join(Connection().pack_command("SET", key, 1, "NX", "EX", 2592000))


@pytest.mark.django_db
def test_a_v3_status_callback_spends_its_v2_nonce_for_its_ttl(client, settings):
    from django.core.cache import cache

    settings.PLIVO_AUTH_TOKEN, settings.PLIVO_WEBHOOK_SECRET, settings.PUBLIC_BASE_URL = PLIVO_TOKEN, PLIVO_SECRET, BASE
    path = f"/webhooks/plivo/{PLIVO_SECRET}/status/42/"
    params = {"Status": "delivered", "MessageUUID": "u-1"}
    headers = plivo_signature_headers("POST", BASE + path, params, PLIVO_TOKEN, nonce="77")
    cache.delete(_key("plivo-v2", headers["X-Plivo-Signature-V2-Nonce"]))

    response = client.post(path, urlencode(params), content_type="application/x-www-form-urlencoded", headers=headers)
    stripped = {k: v for k, v in headers.items() if "V3" not in k}
    forged = client.post(
        path,
        urlencode({**params, "Status": "failed"}),
        content_type="application/x-www-form-urlencoded",
        headers=stripped,
    )

    assert (response.status_code, forged.status_code) == (200, 403)
    redis = cache._cache.get_client(write=True)
    ttl = redis.ttl(cache.make_and_validate_key(_key("plivo-v2", headers["X-Plivo-Signature-V2-Nonce"])))
    assert django_settings.WEBHOOK_NONCE_TTL_SECONDS - 60 < ttl <= django_settings.WEBHOOK_NONCE_TTL_SECONDS
    assert list(ProviderEvent.objects.values_list("status", flat=True)) == ["delivered"]


@pytest.mark.django_db
def test_a_v3_status_callback_is_stored_while_redis_is_down(client, settings):
    settings.PLIVO_AUTH_TOKEN, settings.PLIVO_WEBHOOK_SECRET, settings.PUBLIC_BASE_URL = PLIVO_TOKEN, PLIVO_SECRET, BASE
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"}
    }
    path = f"/webhooks/plivo/{PLIVO_SECRET}/status/43/"
    params = {"Status": "delivered", "MessageUUID": "u-2"}
    headers = plivo_signature_headers("POST", BASE + path, params, PLIVO_TOKEN)

    response = client.post(path, urlencode(params), content_type="application/x-www-form-urlencoded", headers=headers)

    assert response.status_code == 200
    assert list(ProviderEvent.objects.values_list("message_ref", flat=True)) == ["43"]


def test_writes_alongside_concurrent_reports_go_out_once_per_flush_before_its_insert(transactional_db):
    """The V2-nonce SETs of callbacks sharing a flush are one write, sent before the INSERT, read after it."""
    log: list[tuple[str, object]] = []
    real_insert = events._insert_rows

    def send(items):
        log.append(("send", sorted(items)))
        return lambda: log.append(("finish", sorted(items)))

    def logged_insert(rows):
        log.append(("insert", len(rows)))
        real_insert(rows)

    calls = [
        lambda i=i: record_status_events(events=[report(i + 1)], alongside=[events.Alongside(send, i)])
        for i in range(6)
    ]
    events._insert_rows = logged_insert
    try:
        errors, sizes = run_while_the_table_is_locked(calls, queued=5)
    finally:
        events._insert_rows = real_insert

    assert errors == dict.fromkeys(range(6))
    assert sizes == [1, 5]
    rest = [1, 2, 3, 4, 5]
    assert log == [("send", [0]), ("insert", 1), ("finish", [0]), ("send", rest), ("insert", 5), ("finish", rest)]
    assert stored_refs() == [str(i + 1) for i in range(6)]


def test_a_failing_write_alongside_does_not_cost_the_report(transactional_db, caplog):
    def send(items):
        raise RuntimeError("store down")

    record_status_events(events=[report(3)], alongside=[events.Alongside(send, "n")])

    assert stored_refs() == ["3"]
    assert "alongside the status INSERT failed" in caplog.text


@pytest.mark.django_db
def test_a_v3_status_callback_refused_before_its_insert_still_spends_its_v2_nonce(client, settings):
    from django.core.cache import cache

    settings.PLIVO_AUTH_TOKEN, settings.PLIVO_WEBHOOK_SECRET, settings.PUBLIC_BASE_URL = PLIVO_TOKEN, PLIVO_SECRET, BASE
    path = f"/webhooks/plivo/{PLIVO_SECRET}/status/44/"
    params = {"MessageUUID": "u-3"}  # no Status: refused after the signature check, before any INSERT
    headers = plivo_signature_headers("POST", BASE + path, params, PLIVO_TOKEN, nonce="78")
    cache.delete(_key("plivo-v2", "78"))

    response = client.post(path, urlencode(params), content_type="application/x-www-form-urlencoded", headers=headers)
    stripped = {k: v for k, v in headers.items() if "V3" not in k}
    forged = client.post(
        path,
        urlencode({**params, "Status": "delivered"}),
        content_type="application/x-www-form-urlencoded",
        headers=stripped,
    )

    assert (response.status_code, forged.status_code) == (400, 403)
    assert ProviderEvent.objects.count() == 0


def test_concurrent_v3_status_callbacks_spend_every_v2_nonce_in_one_redis_write_per_flush(transactional_db, settings):
    from django.core.cache import cache
    from django.test import Client

    from providers.webhooks import replay

    settings.PLIVO_AUTH_TOKEN, settings.PLIVO_WEBHOOK_SECRET, settings.PUBLIC_BASE_URL = PLIVO_TOKEN, PLIVO_SECRET, BASE
    posts = []
    for i in range(5):
        path = f"/webhooks/plivo/{PLIVO_SECRET}/status/{50 + i}/"
        params = {"Status": "delivered", "MessageUUID": f"u-{i}"}
        headers = plivo_signature_headers("POST", BASE + path, params, PLIVO_TOKEN, nonce=f"9000{i}")
        cache.delete(_key("plivo-v2", f"9000{i}"))
        posts.append((path, urlencode(params), headers))
    writes: list[int] = []
    real_spend_all = replay.spend_all

    def counted(nonces):  # the real write, counted
        writes.append(len(nonces))
        return real_spend_all(nonces)

    def call(i: int) -> None:
        path, body, headers = posts[i]
        response = Client().post(path, body, content_type="application/x-www-form-urlencoded", headers=headers)
        assert response.status_code == 200

    replay.spend_all = counted
    try:
        # Alongside holds the function it was given: build the writes after the swap.
        errors, sizes = run_while_the_table_is_locked([lambda i=i: call(i) for i in range(5)], queued=4)
    finally:
        replay.spend_all = real_spend_all

    assert errors == dict.fromkeys(range(5))
    assert (sizes, writes) == ([1, 4], [1, 4])
    redis = cache._cache.get_client(write=True)
    for i in range(5):
        ttl = redis.ttl(cache.make_and_validate_key(_key("plivo-v2", f"9000{i}")))
        assert django_settings.WEBHOOK_NONCE_TTL_SECONDS - 60 < ttl <= django_settings.WEBHOOK_NONCE_TTL_SECONDS
    assert stored_refs() == [str(50 + i) for i in range(5)]


@pytest.mark.django_db
def test_webhooks_stay_csrf_exempt_through_the_portals_full_middleware(settings):
    from django.test import Client

    settings.PLIVO_AUTH_TOKEN, settings.PLIVO_WEBHOOK_SECRET, settings.PUBLIC_BASE_URL = PLIVO_TOKEN, PLIVO_SECRET, BASE
    path = f"/webhooks/plivo/{PLIVO_SECRET}/status/45/"
    params = {"Status": "delivered", "MessageUUID": "u-4"}
    headers = plivo_signature_headers("POST", BASE + path, params, PLIVO_TOKEN)

    response = Client(enforce_csrf_checks=True).post(
        path, urlencode(params), content_type="application/x-www-form-urlencoded", headers=headers
    )

    assert response.status_code == 200
    assert list(ProviderEvent.objects.values_list("message_ref", flat=True)) == ["45"]
