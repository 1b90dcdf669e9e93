"""Every relay change a person makes is in the audit log once, whichever way they made it (the services record it)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from accounts.models import AuditEvent
from relay import services
from relay.models import Conversation
from tests.relay.conftest import A, B
from tests.relay.test_api import API, client_for

pytestmark = pytest.mark.django_db


def _actions(user) -> list[str]:
    return list(AuditEvent.objects.filter(actor=user).order_by("id").values_list("action", flat=True))


def test_api_create_and_close_are_audited_once(alice, make_relay_numbers):
    make_relay_numbers(2)
    client = client_for(alice)
    created = client.post(f"{API}/conversations", {"participant_a": A, "participant_b": B}, format="json")
    assert created.status_code == 201, created.content
    assert client.post(f"{API}/conversations/{created.json()['id']}/close").status_code == 200
    assert [a for a in _actions(alice) if a.startswith("relay.")] == ["relay.create", "relay.close"]


def test_web_and_admin_closes_are_audited_and_expiry_is_not(client, make_user, make_relay_numbers):
    alice = make_user("root", role="admin", is_staff=True, is_superuser=True)  # the admin site needs staff
    make_relay_numbers(2)
    by_web = services.conversation_create(participant_a=A, participant_b=B, created_by=alice)
    client.force_login(alice)
    client.post(reverse("relay:close", args=[by_web.pk]))
    by_admin = services.conversation_create(participant_a=A, participant_b=B, created_by=alice)
    response = client.post(
        reverse("admin:relay_conversation_changelist"),
        {"action": "close_selected", "_selected_action": [by_admin.pk]},
    )
    assert response.status_code == 302
    expiring = services.conversation_create(participant_a=A, participant_b=B)
    services.conversation_close(conversation=expiring, reason="expired", status=Conversation.Status.EXPIRED)

    closes = AuditEvent.objects.filter(action="relay.close")
    assert sorted(int(e.target_id) for e in closes) == sorted([by_web.pk, by_admin.pk])
    assert {e.actor_id for e in closes} == {alice.pk}


def test_pool_changes_through_the_api_are_audited(alice):
    client = client_for(alice)
    added = client.post(f"{API}/numbers", {"number": "+14155550190"}, format="json")
    assert added.status_code == 201, added.content
    assert client.patch(f"{API}/numbers/{added.json()['id']}", {"label": "night"}, format="json").status_code == 200
    assert [a for a in _actions(alice) if a.startswith("relay.")] == ["relay.number_add", "relay.number_update"]
