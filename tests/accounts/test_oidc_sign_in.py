"""OpenID Connect sign-in end to end: Django test client -> allauth -> real HTTP to a loopback provider."""

from __future__ import annotations

import http.client
from urllib.parse import urlparse

import pytest
from allauth.socialaccount.models import SocialAccount

from accounts.models import AuditEvent, User
from tests.accounts.conftest import PROVIDER_ID


def follow_provider_redirect(location: str) -> str:
    """Visit the provider's authorize URL over real HTTP and return where it sends the browser back to."""
    url = urlparse(location)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    conn.request("GET", f"{url.path}?{url.query}")
    response = conn.getresponse()
    assert response.status == 302, response.read()
    return response.getheader("Location")


def sign_in(client, oidc):
    start = client.post(f"/accounts/oidc/{PROVIDER_ID}/login/")
    assert start.status_code == 302
    assert start["Location"].startswith(f"{oidc.issuer}/authorize?")
    back = urlparse(follow_provider_redirect(start["Location"]))
    assert back.path == f"/accounts/oidc/{PROVIDER_ID}/login/callback/"
    return client.get(f"{back.path}?{back.query}")


@pytest.fixture
def dana(make_user):
    """An approved sender whose email the identity provider will vouch for."""
    return make_user("dana", role="sender")


def test_it_signs_in_an_approved_identity(client, oidc, dana):
    response = sign_in(client, oidc)

    assert response.status_code == 302
    assert response["Location"] == "/"
    assert client.session["_auth_user_id"] == str(dana.pk)
    # allauth talked to the provider over HTTP: discovery, code exchange, userinfo.
    assert "GET /.well-known/openid-configuration" in oidc.requests
    assert "POST /token" in oidc.requests
    assert "GET /userinfo" in oidc.requests
    account = SocialAccount.objects.get(provider=PROVIDER_ID)
    assert account.user == dana and account.uid == "user-1"
    event = AuditEvent.objects.get(action="auth.sign_in")
    assert event.actor == dana and event.detail == f"via {PROVIDER_ID}"
    assert event.ip == "127.0.0.1"
    # The dashboard now treats them as signed in.
    assert client.get("/").status_code == 200


def test_it_signs_in_again_through_the_connected_account(client, oidc, dana):
    sign_in(client, oidc)
    client.logout()
    oidc.identity = {**oidc.identity, "email": "dana.new@example.com"}  # email changed at the IdP; sub did not

    response = sign_in(client, oidc)

    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(dana.pk)
    assert SocialAccount.objects.count() == 1


def test_it_refuses_an_identity_nobody_approved(client, oidc, dana):
    oidc.identity = {"sub": "stranger", "email": "mallory@evil.example", "email_verified": True, "name": "M"}
    users_before = User.objects.count()

    response = sign_in(client, oidc)

    assert response.status_code == 403
    assert b"You cannot sign in to this portal" in response.content
    assert b"by invitation only" in response.content
    assert "_auth_user_id" not in client.session
    assert User.objects.count() == users_before
    assert not User.objects.filter(email="mallory@evil.example").exists()
    assert not SocialAccount.objects.exists()
    event = AuditEvent.objects.get(action="auth.sign_in_refused")
    assert event.actor is None
    assert event.actor_description == f"{PROVIDER_ID}:mallory@evil.example"
    assert not AuditEvent.objects.filter(action="auth.sign_in").exists()


def test_it_refuses_an_unverified_email_even_if_it_matches(client, oidc, dana):
    oidc.identity = {"sub": "impostor", "email": dana.email, "email_verified": False}

    response = sign_in(client, oidc)

    assert response.status_code == 403
    assert b"did not confirm that you own this email address" in response.content
    assert "_auth_user_id" not in client.session
    assert not SocialAccount.objects.exists()
    assert AuditEvent.objects.filter(action="auth.sign_in_refused").count() == 1


@pytest.mark.parametrize(
    ("field", "reason"),
    [("is_approved", b"not been approved"), ("is_active", b"deactivated")],
)
def test_it_refuses_a_known_person_who_is_not_allowed_in(client, oidc, dana, field, reason):
    User.objects.filter(pk=dana.pk).update(**{field: False})

    response = sign_in(client, oidc)

    assert response.status_code == 403
    assert reason in response.content
    assert "_auth_user_id" not in client.session
    assert not SocialAccount.objects.exists()
    event = AuditEvent.objects.get(action="auth.sign_in_refused")
    assert event.target_id == str(dana.pk)


def test_an_invited_person_can_sign_in(client, oidc, alice):
    from accounts.services import user_invite

    invited = user_invite(actor=alice, email="Dana@Example.com", role="viewer")

    response = sign_in(client, oidc)

    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(invited.pk)
