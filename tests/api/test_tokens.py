"""API tokens (issues 16.8 and 18.2): scopes on every endpoint, expiry, a cap, the API and the CLI."""

from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import get_resolver
from django.utils import timezone
from rest_framework.permissions import SAFE_METHODS
from rest_framework.test import APIClient

from accounts.models import ApiToken, AuditEvent, TokenScope, all_token_scopes
from accounts.services import api_token_create
from api.scopes import WRITE_SCOPES
from api.urls import router


def bearer(raw: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def token_for(user, *scopes: str) -> APIClient:
    _, raw = api_token_create(actor=user, user=user, name="t", scopes=list(scopes))
    return bearer(raw)


# --- Scopes -------------------------------------------------------------------------


def test_a_read_only_token_reads_everything_and_writes_nothing(alice, make_sender):
    make_sender(alice)
    client = token_for(alice, "read")
    for path in ("/api/v1/lists", "/api/v1/campaigns", "/api/v1/senders", "/api/v1/accounts/me", "/api/v1/tokens"):
        assert client.get(path).status_code == 200, path
    refused = client.post("/api/v1/lists", {"name": "x"}, format="json")
    assert refused.status_code == 403 and "manage-recipients" in refused.json()["message"]
    assert client.post("/api/v1/messages/send", {"to": "+14155552671", "body": "hi"}, format="json").status_code == 403
    assert client.post("/api/v1/tokens", {"name": "x", "scopes": ["read"]}, format="json").status_code == 403


def test_each_write_needs_its_own_scope(alice, make_sender):
    make_sender(alice, number="+14155550100")
    send = token_for(alice, "send")
    recipients = token_for(alice, "manage-recipients")
    settings_ = token_for(alice, "manage-settings")
    assert send.post("/api/v1/messages/send", {"to": "+14155552671", "body": "hi"}, format="json").status_code == 201
    assert send.post("/api/v1/campaigns", {"name": "c", "body": "b"}, format="json").status_code == 201
    assert send.post("/api/v1/lists", {"name": "x"}, format="json").status_code == 403
    assert recipients.post("/api/v1/lists", {"name": "x"}, format="json").status_code == 201
    assert recipients.post("/api/v1/campaigns", {"name": "c", "body": "b"}, format="json").status_code == 403
    grant = {"user": alice.pk, "number": "+14155550199"}
    assert recipients.post("/api/v1/senders", grant, format="json").status_code == 403
    assert settings_.post("/api/v1/senders", grant, format="json").status_code == 201


def test_scopes_never_add_to_the_role(carol):
    """A viewer's token with every scope still cannot write."""
    client = token_for(carol, *all_token_scopes())
    assert client.post("/api/v1/lists", {"name": "x"}, format="json").status_code == 403


def test_a_browser_session_is_limited_by_the_role_only(bob, client):
    client.force_login(bob)
    response = client.post("/api/v1/lists", {"name": "x"}, content_type="application/json")
    assert response.status_code == 201


def _api_writes():
    """(path, method) of every write under /api/v1, ids filled with one that does not exist."""
    for top in get_resolver().url_patterns:
        if str(top.pattern) != "api/v1/":
            continue
        for pattern in top.url_patterns:
            view = pattern.callback
            cls = view.cls
            actions = getattr(view, "actions", None) or {m: m for m in cls.http_method_names}
            path = re.sub(r"\(\?P<\w+>[^)]*\)", "999999", str(pattern.pattern).strip("^$"))
            for method, handler in actions.items():
                if method.upper() not in SAFE_METHODS and hasattr(cls, handler):
                    yield f"/api/v1/{path}", method


def test_every_api_write_checks_the_token_scope(alice):
    """One place (ApiMixin.check_permissions): a read-only admin token is refused every write, before
    anything else is looked at."""
    client = token_for(alice, "read")
    writes = list(_api_writes())
    assert ("/api/v1/lists", "post") in writes and ("/api/v1/campaigns/999999/launch", "post") in writes
    for path, method in writes:
        response = getattr(client, method)(path, {}, format="json")
        assert response.status_code == 403, (method, path, response.status_code)
        assert "scope" in response.json()["message"], (method, path)


def test_every_router_view_with_writes_has_a_scope():
    for _prefix, viewset, basename in router.registry:
        writes = {"create", "update", "partial_update", "destroy"} & set(dir(viewset))
        writes |= {a.__name__ for a in viewset.get_extra_actions() if set(a.mapping) - {"get", "head", "options"}}
        if writes:
            assert basename in WRITE_SCOPES, f"{basename}: add its write scope to api/scopes.py"


def test_tokens_made_before_scopes_keep_every_scope():
    """The migration's default (documented in docs/api.md): nothing an existing integration did breaks."""
    assert ApiToken._meta.get_field("scopes").default is all_token_scopes
    assert all_token_scopes() == ["read", "send", "manage-recipients", "manage-settings"]


# --- The token API ------------------------------------------------------------------


def test_create_list_and_revoke_over_the_api(bob):
    client = token_for(bob, "manage-settings", "send")
    response = client.post("/api/v1/tokens", {"name": "CRM", "scopes": ["send"], "expires_in_days": 90}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert response["Cache-Control"] == "no-store"
    raw = body["token"]
    assert raw.startswith(f"smsp_{body['prefix']}_") and body["scopes"] == ["send"]
    assert abs((ApiToken.objects.get(pk=body["id"]).expires_at - timezone.now()) - timedelta(days=90)) < timedelta(
        minutes=1
    )
    listed = client.get("/api/v1/tokens").json()["results"]
    assert {t["id"] for t in listed} == {body["id"], ApiToken.objects.get(name="t").pk}
    assert raw not in str(listed) and all("token" not in t for t in listed)
    assert bearer(raw).get("/api/v1/accounts/me").status_code == 200
    assert client.delete(f"/api/v1/tokens/{body['id']}").status_code == 204
    assert bearer(raw).get("/api/v1/accounts/me").status_code == 401
    events = AuditEvent.objects.filter(target_id=str(body["id"]), target_type="accounts.apitoken")
    assert set(events.values_list("action", flat=True)) == {"token.create", "token.revoke"}
    assert "scopes send" in events.get(action="token.create").detail


def test_a_token_cannot_grant_more_than_it_has(bob):
    narrow = token_for(bob, "manage-settings")
    made = narrow.post("/api/v1/tokens", {"name": "y", "scopes": ["manage-settings", "read"]}, format="json")
    assert made.status_code == 201
    refused = narrow.post("/api/v1/tokens", {"name": "w", "scopes": ["send"]}, format="json")
    assert refused.status_code == 400 and "does not have: send" in str(refused.json())
    assert not ApiToken.objects.filter(name="w").exists()


def test_others_tokens_are_invisible_and_only_admins_make_them_for_others(alice, bob, dave):
    theirs, _ = api_token_create(actor=dave, user=dave, name="dave's")
    client = token_for(bob, "manage-settings", "read")
    assert client.get(f"/api/v1/tokens/{theirs.pk}").status_code == 404
    assert client.delete(f"/api/v1/tokens/{theirs.pk}").status_code == 404
    assert ApiToken.objects.get(pk=theirs.pk).revoked_at is None
    refused = client.post("/api/v1/tokens", {"name": "x", "scopes": ["read"], "user": dave.pk}, format="json")
    assert refused.status_code == 400
    admin = token_for(alice, "manage-settings", "send")
    made = admin.post("/api/v1/tokens", {"name": "for dave", "scopes": ["send"], "user": dave.pk}, format="json")
    assert made.status_code == 201 and made.json()["user"] == dave.pk
    assert admin.delete(f"/api/v1/tokens/{theirs.pk}").status_code == 204


def test_the_number_of_active_tokens_per_user_is_capped(bob, settings):
    settings.API_TOKENS_PER_USER = 3
    api_token_create(actor=bob, user=bob, name="1")
    expired, _ = api_token_create(actor=bob, user=bob, name="2")
    api_token_create(actor=bob, user=bob, name="3")
    with pytest.raises(Exception, match="already has 3 active API tokens"):
        api_token_create(actor=bob, user=bob, name="4")
    ApiToken.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    _, raw = api_token_create(actor=bob, user=bob, name="4")  # an expired token no longer counts
    refused = bearer(raw).post("/api/v1/tokens", {"name": "5", "scopes": ["read"]}, format="json")
    assert refused.status_code == 400 and "revoke one first" in refused.json()["message"]
    assert ApiToken.objects.filter(user=bob).count() == 4


@pytest.mark.parametrize("body", [{"name": "x"}, {"name": "x", "scopes": []}, {"name": "x", "scopes": ["root"]}])
def test_scopes_must_be_named_and_known(bob, body):
    response = token_for(bob, "manage-settings").post("/api/v1/tokens", body, format="json")
    assert response.status_code == 400 and "scopes" in response.json()["errors"]


def test_the_web_page_makes_a_read_only_token_unless_scopes_are_ticked(client, carol):
    client.force_login(carol)
    client.post("/tokens/", {"name": "reporting"})
    client.post("/tokens/", {"name": "sync", "scopes": ["send", "manage-recipients"]})
    assert dict(ApiToken.objects.values_list("name", "scopes")) == {
        "reporting": ["read"],
        "sync": ["send", "manage-recipients"],
    }


# --- manage.py api_token --------------------------------------------------------------


def test_the_command_creates_prints_once_lists_and_revokes(bob):
    out, err = io.StringIO(), io.StringIO()
    call_command("api_token", "create", "--user", "bob", "--scope", "send", "--expires", "90d", stdout=out, stderr=err)
    raw = out.getvalue().strip()
    token = ApiToken.objects.get(user=bob)
    assert raw.startswith(f"smsp_{token.prefix}_") and token.scopes == ["send"]
    assert timedelta(days=89, hours=23) < token.expires_at - timezone.now() <= timedelta(days=90)
    assert "not shown again" in err.getvalue()
    assert bearer(raw).post("/api/v1/lists", {"name": "x"}, format="json").status_code == 403
    created = AuditEvent.objects.get(action="token.create", target_id=str(token.pk))
    assert created.actor is None and created.actor_description.startswith("manage.py api_token")

    listing = io.StringIO()
    call_command("api_token", "list", stdout=listing)
    assert f"smsp_{token.prefix}_" in listing.getvalue() and "send" in listing.getvalue()
    assert raw not in listing.getvalue()

    done = io.StringIO()
    call_command("api_token", "revoke", token.prefix, stdout=done)
    assert "revoked" in done.getvalue()
    assert ApiToken.objects.get(pk=token.pk).revoked_at is not None
    assert AuditEvent.objects.filter(action="token.revoke", target_id=str(token.pk)).exists()
    empty = io.StringIO()
    call_command("api_token", "list", stdout=empty)
    assert empty.getvalue() == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["create", "--user", "nobody", "--scope", "read"], "No user named"),
        (["create", "--user", "bob", "--scope", "read", "--expires", "soon"], "90d"),
        (["revoke", "nope"], "No token"),
    ],
)
def test_the_command_explains_bad_input(bob, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("api_token", *args)


def test_scope_choices_are_the_documented_ones():
    assert TokenScope.values == ["read", "send", "manage-recipients", "manage-settings"]
