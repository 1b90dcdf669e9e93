"""API token authentication, password switch-off, and the append-only audit log."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import DatabaseError, transaction
from django.utils import timezone

from accounts.models import ApiToken, AuditEvent
from accounts.services import api_token_create, api_token_revoke, audit_record

ME = "/api/v1/accounts/me"


def test_a_token_authenticates_and_is_stored_hashed(client, bob, make_sender):
    make_sender(bob, number="+14155550100")
    token, raw = api_token_create(actor=bob, user=bob, name="ci")

    for scheme in ("Bearer", "Token"):
        response = client.get(ME, HTTP_AUTHORIZATION=f"{scheme} {raw}")
        assert response.status_code == 200
        assert response.json() == {
            "id": bob.pk,
            "username": "bob",
            "email": "bob@example.com",
            "role": "sender",
            "senders": ["+14155550100"],
        }
    stored = ApiToken.objects.get(pk=token.pk)
    assert raw not in (stored.hashed_secret, stored.prefix)
    assert stored.last_used_at is not None


def test_last_used_is_written_at_most_once_a_minute(client, bob):
    token, raw = api_token_create(actor=bob, user=bob, name="ci")
    client.get(ME, HTTP_AUTHORIZATION=f"Bearer {raw}")
    first = ApiToken.objects.get(pk=token.pk).last_used_at
    client.get(ME, HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert ApiToken.objects.get(pk=token.pk).last_used_at == first
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=first - timedelta(minutes=2))
    client.get(ME, HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert ApiToken.objects.get(pk=token.pk).last_used_at > first


@pytest.mark.parametrize(
    ("spoil", "message"),
    [
        ("revoke", "revoked"),
        ("expire", "expired"),
        ("unapprove", "may no longer sign in"),
        ("tamper", "Invalid API token"),
    ],
)
def test_unusable_tokens_get_a_clear_401(client, bob, alice, spoil, message):
    token, raw = api_token_create(actor=bob, user=bob, name="ci")
    if spoil == "revoke":
        api_token_revoke(actor=alice, token=token)
    elif spoil == "expire":
        ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    elif spoil == "unapprove":
        type(bob).objects.filter(pk=bob.pk).update(is_approved=False)
    else:
        raw = raw[:-2] + ("AA" if not raw.endswith("AA") else "BB")

    response = client.get(ME, HTTP_AUTHORIZATION=f"Bearer {raw}")

    assert response.status_code == 401
    assert message in response.content.decode()


def test_token_pages_show_the_secret_once_and_audit(client, carol):
    client.force_login(carol)
    response = client.post("/tokens/", {"name": "reporting"})
    assert response.status_code == 200
    raw = response.context["created"]["raw"]
    assert raw in response.content.decode()
    assert raw not in client.get("/tokens/").content.decode()
    token = ApiToken.objects.get(user=carol)
    assert AuditEvent.objects.filter(action="token.create", target_id=str(token.pk), actor=carol).exists()
    assert client.post(f"/tokens/{token.pk}/revoke/").status_code == 302
    assert ApiToken.objects.get(pk=token.pk).revoked_at is not None
    assert AuditEvent.objects.filter(action="token.revoke", target_id=str(token.pk)).exists()


def test_password_sign_in_can_be_switched_off_except_for_superusers(client, settings, bob, make_user):
    settings.PASSWORD_LOGIN_ENABLED = False
    settings.SOCIALACCOUNT_ONLY = True
    assert not client.login(username="bob", password="pw-bob")
    make_user("root", role="admin", is_superuser=True, is_staff=True)
    assert client.login(username="root", password="pw-root")
    client.logout()
    page = client.get("/accounts/login/")
    assert b"Password sign-in is switched off" in page.content
    assert b'id="password-login"' not in page.content


def test_password_sign_in_is_audited_and_refuses_unapproved_people(client, bob, make_user):
    response = client.post("/accounts/login/", {"login": "bob", "password": "pw-bob"})
    assert response.status_code == 302
    assert AuditEvent.objects.filter(action="auth.sign_in", actor=bob, detail="with a password").exists()
    client.logout()
    make_user("una", role="admin", is_approved=False)
    response = client.post("/accounts/login/", {"login": "una", "password": "pw-una"})
    assert response.status_code in (200, 403)
    assert "_auth_user_id" not in client.session


def test_role_changes_are_audited(client, alice, carol):
    client.force_login(alice)
    response = client.post(f"/users/{carol.pk}/edit/", {"role": "sender", "is_approved": "on", "is_active": "on"})
    assert response.status_code == 302
    carol.refresh_from_db()
    assert carol.role == "sender"
    event = AuditEvent.objects.get(action="user.set_role")
    assert (event.actor, event.detail) == (alice, "viewer -> sender")


def test_admin_cannot_demote_themselves(client, alice):
    client.force_login(alice)
    response = client.post(f"/users/{alice.pk}/edit/", {"role": "viewer", "is_approved": "on", "is_active": "on"})
    assert response.status_code == 400
    alice.refresh_from_db()
    assert alice.role == "admin"


def test_the_audit_log_refuses_updates_and_deletes(alice):
    event = audit_record(actor=alice, action="test.thing", detail="x")
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(detail="changed")
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).delete()
    # Deleting the actor keeps the event, with their name.
    alice.delete()
    event.refresh_from_db()
    assert event.actor is None and event.actor_description == "alice@example.com"


def test_the_audit_page_names_every_actor_the_same_way(client, alice, make_user):
    """Sign-ins and launches were stored with the email, others with the username: the page shows one name."""
    admin = make_user("admin", role="admin")
    audit_record(actor=admin, action="auth.sign_in", target=admin)  # stored as admin@example.com
    audit_record(actor=admin, actor_description="admin", action="campaign.launch")
    audit_record(actor=None, actor_description="mallory", action="auth.sign_in_refused")
    client.force_login(alice)
    page = client.get("/audit/").content.decode()
    assert page.count(f'data-testid="actor" title="{admin.email}">admin<') == 2
    assert f">{admin.email}<" not in page
    assert 'data-testid="actor">mallory<' in page
    # Filtering by either name finds the user's events.
    for name in ("admin", admin.email):
        rows = client.get("/audit/", {"actor": name}).context["page"]
        assert {e.action for e in rows} >= {"auth.sign_in", "campaign.launch"}
    # On a phone the table stacks: every cell carries its column name.
    assert 'class="stack audit"' in page and 'data-label="Action"' in page


def test_the_admin_audit_list_shows_the_same_name(client, make_user):
    root = make_user("root", role="admin", is_staff=True, is_superuser=True)
    audit_record(actor=root, action="auth.sign_in", target=root)
    client.force_login(root)
    page = client.get("/admin/accounts/auditevent/").content.decode()
    assert '<td class="field-who">root</td>' in page


def test_a_consent_change_by_a_person_is_logged_under_their_name_not_the_channel(alice, make_recipients):
    from recipients.services import recipient_opt_out

    recipient = make_recipients(1)[0]
    recipient_opt_out(recipient=recipient, channel="admin", evidence="asked by phone", actor=alice)
    event = AuditEvent.objects.get(action="consent.opted_out")
    assert event.actor == alice and event.actor_description == "alice@example.com"
    # Nobody acted (a STOP from the provider): the channel names it.
    recipient = make_recipients(1)[0]
    recipient_opt_out(recipient=recipient, channel="sms", evidence="STOP")
    assert AuditEvent.objects.filter(action="consent.opted_out", actor=None).get().actor_name == "sms"
