"""Django admin for the relay: staff only; conversations are read-only there."""

from __future__ import annotations

import pytest

from relay import services
from tests.relay.conftest import A, B

pytestmark = pytest.mark.django_db


@pytest.fixture
def conversation(make_relay_numbers):
    make_relay_numbers(1)
    return services.conversation_create(participant_a=A, participant_b=B)


def test_admin_pages_need_staff(client, bob, conversation):
    client.force_login(bob)
    response = client.get("/admin/relay/conversation/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_superuser_sees_pool_conversations_and_can_close_them(client, make_user, conversation):
    root = make_user("root", role="admin", is_staff=True, is_superuser=True)
    client.force_login(root)
    assert client.get("/admin/relay/relaynumber/").status_code == 200
    page = client.get(f"/admin/relay/conversation/{conversation.pk}/change/")
    assert page.status_code == 200 and A in page.content.decode()
    assert client.get("/admin/relay/conversation/add/").status_code == 403
    response = client.post(
        "/admin/relay/conversation/", {"action": "close_selected", "_selected_action": [conversation.pk]}
    )
    assert response.status_code == 302
    conversation.refresh_from_db()
    assert conversation.status == "closed" and not conversation.legs.filter(is_open=True).exists()
