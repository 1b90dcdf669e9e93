"""Idempotency-Key: replay, mismatch, errors not kept, keys per user, and concurrent retries."""

import threading

import pytest
from django.db import connection

from api.models import IdempotencyRecord
from messaging.models import Message
from providers.backends import locmem
from recipients.models import RecipientList

SEND = "/api/v1/messages/send"


@pytest.fixture
def bob_number(bob, make_sender):
    return make_sender(bob, number="+14155550100")


def test_a_retry_replays_the_first_response_and_sends_nothing_new(
    bob, bob_number, client_for, django_capture_on_commit_callbacks
):
    client = client_for(bob)
    payload = {"to": "+14155552671", "body": "once"}
    with django_capture_on_commit_callbacks(execute=True):
        first = client.post(SEND, payload, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
        again = client.post(SEND, payload, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert Message.objects.count() == 1
    assert len(locmem.outbox) == 1


def test_key_order_and_whitespace_in_json_do_not_matter(bob, client_for):
    client = client_for(bob)
    first = client.post(
        "/api/v1/lists", '{"name": "a", "description": "d"}', content_type="application/json", HTTP_IDEMPOTENCY_KEY="x"
    )
    again = client.post(
        "/api/v1/lists", '{"description":"d","name":"a"}', content_type="application/json", HTTP_IDEMPOTENCY_KEY="x"
    )
    assert (first.status_code, again.status_code) == (201, 201)
    assert RecipientList.objects.count() == 1


def test_same_key_with_a_different_body_is_422(bob, bob_number, client_for):
    client = client_for(bob)
    client.post(SEND, {"to": "+14155552671", "body": "one"}, format="json", HTTP_IDEMPOTENCY_KEY="k")
    response = client.post(SEND, {"to": "+14155552671", "body": "two"}, format="json", HTTP_IDEMPOTENCY_KEY="k")
    assert response.status_code == 422
    assert "different request" in response.json()["message"]
    assert Message.objects.count() == 1


def test_same_key_on_another_endpoint_is_422(bob, client_for):
    client = client_for(bob)
    assert client.post("/api/v1/lists", {"name": "a"}, format="json", HTTP_IDEMPOTENCY_KEY="k").status_code == 201
    response = client.post("/api/v1/recipients", {"phone": "+14155552671"}, format="json", HTTP_IDEMPOTENCY_KEY="k")
    assert response.status_code == 422


def test_keys_are_per_user(bob, dave, client_for):
    assert (
        client_for(bob).post("/api/v1/lists", {"name": "a"}, format="json", HTTP_IDEMPOTENCY_KEY="k").status_code == 201
    )
    response = client_for(dave).post("/api/v1/lists", {"name": "b"}, format="json", HTTP_IDEMPOTENCY_KEY="k")
    assert response.status_code == 201
    assert RecipientList.objects.count() == 2


def test_an_error_is_not_kept_so_a_fixed_request_can_reuse_the_key(bob, bob_number, client_for):
    client = client_for(bob)
    bad = client.post(SEND, {"to": "nope", "body": "x"}, format="json", HTTP_IDEMPOTENCY_KEY="k")
    assert bad.status_code == 400
    assert not IdempotencyRecord.objects.exists()
    good = client.post(SEND, {"to": "+14155552671", "body": "x"}, format="json", HTTP_IDEMPOTENCY_KEY="k")
    assert good.status_code == 201


def test_an_overlong_key_is_400(bob, client_for):
    response = client_for(bob).post("/api/v1/lists", {"name": "a"}, format="json", HTTP_IDEMPOTENCY_KEY="k" * 256)
    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()["errors"]
    assert not RecipientList.objects.exists()


def test_without_a_key_every_post_acts(bob, bob_number, client_for):
    client = client_for(bob)
    for _ in range(2):
        client.post(SEND, {"to": "+14155552671", "body": "x"}, format="json")
    assert Message.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_concurrent_identical_requests_execute_once(bob, bob_number, client_for):
    """Both requests run at once in real transactions; the unique key lets only one through."""
    barrier = threading.Barrier(4)
    results = []

    def post():
        try:
            client = client_for(bob)
            barrier.wait()
            response = client.post(
                SEND, {"to": "+14155552671", "body": "race"}, format="json", HTTP_IDEMPOTENCY_KEY="race-1"
            )
            results.append((response.status_code, response.json()))
        finally:
            connection.close()

    threads = [threading.Thread(target=post) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(results) == 4
    assert Message.objects.count() == 1
    assert {status for status, _ in results} == {201}
    assert len({body["id"] for _, body in results}) == 1
