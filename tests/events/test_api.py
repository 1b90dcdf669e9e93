"""Event webhook endpoints over the API: admins register them, see every attempt, resend."""

from __future__ import annotations

from standardwebhooks.webhooks import Webhook

from accounts.models import AuditEvent
from events.models import DeliveryAttempt, OutboxEvent, WebhookEndpoint
from events.services import event_publish


def test_admin_registers_an_endpoint_and_gets_its_secret(alice, bob, client_for, receiver):
    response = client_for(alice).post(
        "/api/v1/webhook-endpoints",
        {"url": receiver.url, "event_types": ["recipient.opted_out"], "description": "CRM"},
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["secret"].startswith("whsec_") and body["event_types"] == ["recipient.opted_out"]
    assert body["is_active"] is True
    assert AuditEvent.objects.filter(action="webhook.create", target_id=str(body["id"])).exists()
    assert client_for(bob).get("/api/v1/webhook-endpoints").status_code == 403
    bad = client_for(alice).post(
        "/api/v1/webhook-endpoints", {"url": receiver.url, "event_types": ["x"]}, format="json"
    )
    assert bad.status_code == 400


def test_attempts_are_listed_and_an_event_can_be_resent(
    alice, client_for, receiver, django_capture_on_commit_callbacks, fast_retries
):
    client = client_for(alice)
    endpoint_id = client.post("/api/v1/webhook-endpoints", {"url": receiver.url}, format="json").json()["id"]
    receiver.statuses = [500, 200]
    with django_capture_on_commit_callbacks(execute=True):
        event_publish(event_type="campaign.completed", data={"id": 7, "status": "completed", "reason": ""})
    event = OutboxEvent.objects.get()
    listed = client.get(f"/api/v1/webhook-events?endpoint={endpoint_id}&status=pending").json()["results"]
    assert [e["id"] for e in listed] == [event.pk]
    detail = client.get(f"/api/v1/webhook-events/{event.pk}").json()
    assert detail["webhook_id"] == f"evt_{event.pk}" and detail["delivery_attempts"][0]["status_code"] == 500
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/api/v1/webhook-events/{event.pk}/resend")
    assert response.status_code == 202
    event.refresh_from_db()
    assert event.status == "delivered" and DeliveryAttempt.objects.filter(event=event).count() == 2
    secret = WebhookEndpoint.objects.get(pk=endpoint_id).secret
    last = receiver.received[-1]
    Webhook(secret).verify(last["body"], {k.lower(): v for k, v in last["headers"].items()})


def test_reenabling_over_the_api_clears_the_failures(alice, client_for, receiver):
    client = client_for(alice)
    endpoint_id = client.post("/api/v1/webhook-endpoints", {"url": receiver.url}, format="json").json()["id"]
    WebhookEndpoint.objects.filter(pk=endpoint_id).update(
        is_active=False, failure_count=8, disabled_reason="8 failed attempts in a row"
    )
    body = client.patch(f"/api/v1/webhook-endpoints/{endpoint_id}", {"is_active": True}, format="json").json()
    assert (body["is_active"], body["failure_count"], body["disabled_reason"]) == (True, 0, "")
    rotated = client.post(f"/api/v1/webhook-endpoints/{endpoint_id}/rotate-secret").json()
    assert rotated["secret"] != body["secret"]
