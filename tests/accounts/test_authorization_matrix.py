"""Authorization matrix: every URL in the project by every kind of visitor.

To cover a new view or endpoint, add a ``Row`` to ``ROWS`` (or an exemption
with a reason to ``EXEMPT``): ``test_every_url_has_a_row`` fails until you do.
Each row names the URL, the method, how to build its arguments and body from
the ``World`` fixture, and the expected status for each persona:

- anonymous: nobody signed in
- unapproved: signed in (session exists) but ``is_approved`` was withdrawn; role admin, so the role alone must not help
- viewer: read-only role
- sender_other: a sender holding a grant for a *different* number than the campaign uses
- sender: a sender holding the grant the campaign uses (and owning the campaign)
- admin: admin role

``access("viewer"|"sender"|"admin", ok=...)`` builds the usual expectation:
below the level 403, anonymous/unapproved 302 to sign-in for pages or 401 for
the API; override single personas with keyword arguments.

Run ``ACCT_MATRIX_OBSERVE=1 pytest ... -k matrix -s`` to print actual statuses
instead of asserting (handy when adding rows).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse

PERSONAS = ("anonymous", "unapproved", "viewer", "sender_other", "sender", "admin")
LEVELS = {"viewer": ("viewer", "sender_other", "sender", "admin"), "sender": ("sender_other", "sender", "admin")}
LEVELS["admin"] = ("admin",)


def access(level: str, ok: int = 200, *, anon: int = 302, denied: int = 403, **overrides: int) -> dict[str, int]:
    allowed = LEVELS[level]
    expect = {p: (ok if p in allowed else denied) for p in PERSONAS}
    expect["anonymous"] = expect["unapproved"] = anon
    expect.update(overrides)
    return expect


def api(level: str, ok: int = 200, **overrides: int) -> dict[str, int]:
    return access(level, ok, anon=401, **overrides)


@dataclass
class World:
    """Objects every row may refer to; built fresh (inside the test transaction) for each case."""

    users: dict
    grant: object  # the sender's grant, used by ``campaign``
    other_grant: object  # sender_other's grant for a different number
    recipient_list: object
    recipients: list
    campaign: object  # a draft by ``sender`` from ``grant``
    token: object  # an API token of ``sender``
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Row:
    name: str
    method: str
    expect: dict[str, int]
    kwargs: Callable[[World], dict] = lambda w: {}
    data: Callable[[World], dict] | None = None
    json: bool = False
    note: str = ""

    @property
    def id(self) -> str:
        return f"{self.name}-{self.method}"


# --- Rows -------------------------------------------------------------------------

ACCOUNTS_ROWS = [
    Row("accounts:senders", "GET", access("admin")),
    Row("accounts:sender_create", "GET", access("admin")),
    Row(
        "accounts:sender_create",
        "POST",
        access("admin", 302),
        data=lambda w: {"user": w.users["sender"].pk, "number": "+14155550177", "provider": "plivo", "max_mps": 1},
    ),
    Row("accounts:sender_edit", "GET", access("admin"), kwargs=lambda w: {"pk": w.grant.pk}),
    Row(
        "accounts:sender_edit",
        "POST",
        access("admin", 302),
        kwargs=lambda w: {"pk": w.grant.pk},
        data=lambda w: {"user": w.users["sender"].pk, "number": w.grant.number, "provider": "plivo", "max_mps": 2},
    ),
    Row("accounts:sender_deactivate", "POST", access("admin", 302), kwargs=lambda w: {"pk": w.grant.pk}),
    Row(
        "accounts:sender_deactivate",
        "GET",
        dict.fromkeys(PERSONAS, 405),
        kwargs=lambda w: {"pk": w.grant.pk},
        note="POST only; the method check comes first and reveals nothing",
    ),
    Row("accounts:tokens", "GET", access("viewer")),
    Row("accounts:tokens", "POST", access("viewer"), data=lambda w: {"name": "ci"}),
    # Someone else's token is invisible (404) to everyone but its owner and admins.
    Row(
        "accounts:token_revoke",
        "POST",
        access("viewer", 404, sender=302, admin=302),
        kwargs=lambda w: {"pk": w.token.pk},
    ),
    Row("accounts:users", "GET", access("admin")),
    Row("accounts:user_invite", "GET", access("admin")),
    Row(
        "accounts:user_invite",
        "POST",
        access("admin", 302),
        data=lambda w: {"email": "new@example.com", "role": "viewer"},
    ),
    Row("accounts:user_edit", "GET", access("admin"), kwargs=lambda w: {"pk": w.users["viewer"].pk}),
    Row(
        "accounts:user_edit",
        "POST",
        access("admin", 302),
        kwargs=lambda w: {"pk": w.users["viewer"].pk},
        data=lambda w: {"role": "sender", "is_approved": "on", "is_active": "on"},
    ),
    Row("accounts:audit", "GET", access("admin")),
    Row("accounts:api_me", "GET", api("viewer")),
]

# Rows for other apps were written from each app's stated rules and checked against
# the code: viewers read, senders write (a sender who neither owns the campaign nor
# holds its grant gets 403/404), admins manage; launching needs the grant, so the
# admin (no grant) gets 400 where the authorized sender succeeds.
NONE = 999999  # a primary key that does not exist: at or above the role, the answer is 404


def E(*statuses: int) -> dict[str, int]:
    """Expected statuses in PERSONAS order: anonymous, unapproved, viewer, sender_other, sender, admin."""
    assert len(statuses) == len(PERSONAS)
    return dict(zip(PERSONAS, statuses, strict=True))


CAMPAIGN_WEB_ROWS = [
    Row("dashboard", "GET", E(302, 302, 200, 200, 200, 200)),
    Row("dashboard_running", "GET", E(302, 302, 200, 200, 200, 200)),
    Row("campaign_list", "GET", E(302, 302, 200, 200, 200, 200)),
    Row("campaign_new", "GET", E(302, 302, 403, 200, 200, 200)),
    Row("campaign_new", "POST", E(302, 302, 403, 400, 400, 400), data=lambda w: {"name": ""}),
    Row("campaign_preview", "POST", E(302, 302, 403, 200, 200, 200), data=lambda w: {"body": "Hi"}),
    Row("campaign_detail", "GET", E(302, 302, 200, 200, 200, 200), kwargs=lambda w: {"pk": w.campaign.pk}),
    Row("campaign_status", "GET", E(302, 302, 200, 200, 200, 200), kwargs=lambda w: {"pk": w.campaign.pk}),
    Row("campaign_export", "GET", E(302, 302, 200, 200, 200, 200), kwargs=lambda w: {"pk": w.campaign.pk}),
    Row("campaign_edit", "GET", E(302, 302, 403, 403, 200, 200), kwargs=lambda w: {"pk": w.campaign.pk}),
    Row("campaign_confirm", "GET", E(302, 302, 403, 403, 200, 200), kwargs=lambda w: {"pk": w.campaign.pk}),
    Row(
        "campaign_confirm",
        "POST",
        E(302, 302, 403, 403, 302, 400),
        kwargs=lambda w: {"pk": w.campaign.pk},
        data=lambda w: {},
    ),
    Row("campaign_pause", "POST", E(302, 302, 403, 403, 302, 302), kwargs=lambda w: {"pk": w.campaign.pk}),
    Row("campaign_resume", "POST", E(302, 302, 403, 403, 302, 302), kwargs=lambda w: {"pk": w.campaign.pk}),
    Row("campaign_cancel", "POST", E(302, 302, 403, 403, 302, 302), kwargs=lambda w: {"pk": w.campaign.pk}),
    Row("campaign_retry_failed", "POST", E(302, 302, 403, 403, 302, 302), kwargs=lambda w: {"pk": w.campaign.pk}),
]

RELAY_ROWS = [
    Row("relay:list", "GET", E(302, 302, 200, 200, 200, 200)),
    Row("relay:detail", "GET", E(302, 302, 404, 404, 404, 404), kwargs=lambda w: {"pk": NONE}),
    Row("relay:close", "POST", E(302, 302, 403, 404, 404, 404), kwargs=lambda w: {"pk": NONE}),
    Row("api:relay-conversation-list", "GET", E(401, 401, 200, 200, 200, 200)),
    Row("api:relay-conversation-detail", "GET", E(401, 401, 404, 404, 404, 404), kwargs=lambda w: {"pk": NONE}),
    Row("api:relay-conversation-close", "POST", E(401, 401, 403, 404, 404, 404), kwargs=lambda w: {"pk": NONE}),
    Row("api:relay-conversation-transcript", "GET", E(401, 401, 404, 404, 404, 404), kwargs=lambda w: {"pk": NONE}),
    Row("api:relay-number-list", "GET", E(401, 401, 200, 200, 200, 200)),
    Row("api:relay-number-detail", "GET", E(401, 401, 403, 403, 403, 404), kwargs=lambda w: {"pk": NONE}),
    # The same operations on a real conversation and pool number: viewers read, senders close, admins manage the pool.
    Row("relay:list", "POST", E(302, 302, 403, 400, 400, 400), data=lambda w: {}, note="empty form: 400"),
    Row("relay:detail", "GET", E(302, 302, 200, 200, 200, 200), kwargs=lambda w: {"pk": _conversation(w).pk}),
    Row("relay:close", "POST", E(302, 302, 403, 302, 302, 302), kwargs=lambda w: {"pk": _conversation(w).pk}),
    Row("api:relay-conversation-list", "POST", E(401, 401, 403, 400, 400, 400), data=lambda w: {}, json=True),
    Row(
        "api:relay-conversation-detail",
        "GET",
        E(401, 401, 200, 200, 200, 200),
        kwargs=lambda w: {"pk": _conversation(w).pk},
    ),
    Row(
        "api:relay-conversation-close",
        "POST",
        E(401, 401, 403, 200, 200, 200),
        kwargs=lambda w: {"pk": _conversation(w).pk},
        data=lambda w: {},
        json=True,
    ),
    Row(
        "api:relay-conversation-transcript",
        "GET",
        E(401, 401, 200, 200, 200, 200),
        kwargs=lambda w: {"pk": _conversation(w).pk},
    ),
    Row(
        "api:relay-number-list",
        "POST",
        E(401, 401, 403, 403, 403, 201),
        data=lambda w: {"number": "+14155550188", "label": "new"},
        json=True,
    ),
    Row(
        "api:relay-number-detail", "GET", E(401, 401, 403, 403, 403, 200), kwargs=lambda w: {"pk": _relay_number(w).pk}
    ),
    Row(
        "api:relay-number-detail",
        "PATCH",
        E(401, 401, 403, 403, 403, 200),
        kwargs=lambda w: {"pk": _relay_number(w).pk},
        data=lambda w: {"label": "renamed"},
        json=True,
    ),
]


def _relay_number(w: World):
    """Two pool numbers (made on first use), enough for one conversation."""
    if "relay_numbers" not in w.extra:
        from relay.models import RelayNumber

        w.extra["relay_numbers"] = [
            RelayNumber.objects.create(number=f"+1415555{300 + i:04d}", label=f"pool {i}") for i in range(2)
        ]
    return w.extra["relay_numbers"][0]


def _conversation(w: World):
    if "conversation" not in w.extra:
        from relay.services import conversation_create

        _relay_number(w)
        w.extra["conversation"] = conversation_create(
            participant_a="+14152000001", participant_b="+14152000002", created_by=w.users["sender"]
        )
    return w.extra["conversation"]


def _import_job(w: World):
    """A completed import into the world's list."""
    if "import_job" not in w.extra:
        from recipients.models import ImportJob

        w.extra["import_job"] = ImportJob.objects.create(
            recipient_list=w.recipient_list,
            created_by=w.users["sender"],
            file="imports/none.csv",
            original_name="members.csv",
            status=ImportJob.Status.COMPLETED,
        )
    return w.extra["import_job"]


def _list_pk(w: World) -> dict:
    return {"pk": w.recipient_list.pk}


def _recipient_pk(w: World) -> dict:
    return {"pk": w.recipients[0].pk}


# Recipient pages: viewers read (lists, exports, imports, inbox); senders and admins change
# lists and consent. Writes are POST only, and the method check comes before the role check.
RECIPIENT_ROWS = [
    Row("recipients:list_index", "GET", access("viewer")),
    Row("recipients:list_create", "POST", access("sender", 302), data=lambda w: {"name": "New list"}),
    Row("recipients:list_create", "GET", dict.fromkeys(PERSONAS, 405), note="POST only"),
    Row("recipients:list_detail", "GET", access("viewer"), kwargs=_list_pk),
    Row("recipients:list_rename", "POST", access("sender", 302), kwargs=_list_pk, data=lambda w: {"name": "Renamed"}),
    Row("recipients:list_archive", "POST", access("sender", 302), kwargs=_list_pk, data=lambda w: {"archived": "1"}),
    Row(
        "recipients:list_add_member",
        "POST",
        access("sender", 302),
        kwargs=_list_pk,
        data=lambda w: {"phone": "+14155550199"},
    ),
    Row(
        "recipients:list_remove_member",
        "POST",
        access("sender", 302),
        kwargs=lambda w: {"pk": w.recipient_list.pk, "recipient_pk": w.recipients[0].pk},
    ),
    Row(
        "recipients:list_remove_member",
        "GET",
        dict.fromkeys(PERSONAS, 405),
        kwargs=lambda w: {"pk": w.recipient_list.pk, "recipient_pk": w.recipients[0].pk},
        note="POST only",
    ),
    Row("recipients:list_export", "GET", access("viewer"), kwargs=_list_pk),
    Row(
        "recipients:list_import",
        "POST",
        access("sender", 302),
        kwargs=_list_pk,
        data=lambda w: {},
        note="no file: redirected back with a form error",
    ),
    Row("recipients:import_detail", "GET", access("viewer"), kwargs=lambda w: {"pk": _import_job(w).pk}),
    Row("recipients:import_errors_csv", "GET", access("viewer"), kwargs=lambda w: {"pk": _import_job(w).pk}),
    Row("recipients:consent_export", "GET", access("viewer")),
    Row("recipients:inbox", "GET", access("viewer")),
    Row(
        "recipients:inbox_old",
        "GET",
        dict.fromkeys(PERSONAS, 301),
        note="the inbox's old address: a permanent redirect to /inbox for everyone, which then checks the role",
    ),
    Row("recipients:recipient_detail", "GET", access("viewer"), kwargs=_recipient_pk),
    Row("recipients:recipient_opt_out", "POST", access("sender", 302), kwargs=_recipient_pk, data=lambda w: {}),
    Row(
        "recipients:recipient_consent_override",
        "POST",
        access("admin", 302),
        kwargs=_recipient_pk,
        data=lambda w: {"reason": ""},
        note="admins only; an empty reason (or someone not opted out) is refused with a message",
    ),
    Row(
        "recipients:recipient_confirm",
        "POST",
        access("sender", 302),
        kwargs=_recipient_pk,
        data=lambda w: {"sender": w.grant.pk},
        note="only the grant holder's form is valid; everyone allowed is redirected back",
    ),
]


def _pk(attr):
    return lambda w: {"pk": getattr(w, attr).pk}


API_ROWS = [
    Row("api:list-list", "GET", E(401, 401, 200, 200, 200, 200)),
    Row("api:list-list", "POST", E(401, 401, 403, 201, 201, 201), data=lambda w: {"name": "New list"}, json=True),
    Row("api:list-detail", "GET", E(401, 401, 200, 200, 200, 200), kwargs=_pk("recipient_list")),
    Row("api:recipient-list", "GET", E(401, 401, 200, 200, 200, 200)),
    Row("api:recipient-bulk", "POST", E(401, 401, 403, 400, 400, 400), data=lambda w: {}, json=True),
    Row("api:recipient-detail", "GET", E(401, 401, 200, 200, 200, 200), kwargs=lambda w: {"pk": w.recipients[0].pk}),
    Row(
        "api:recipient-consent-history",
        "GET",
        E(401, 401, 200, 200, 200, 200),
        kwargs=lambda w: {"pk": w.recipients[0].pk},
    ),
    Row(
        "api:recipient-opt-in",
        "POST",
        E(401, 401, 403, 200, 200, 200),
        kwargs=lambda w: {"pk": w.recipients[0].pk},
        data=lambda w: {},
        json=True,
    ),
    Row(
        "api:recipient-opt-out",
        "POST",
        E(401, 401, 403, 200, 200, 200),
        kwargs=lambda w: {"pk": w.recipients[0].pk},
        data=lambda w: {},
        json=True,
    ),
    Row("api:campaign-list", "GET", E(401, 401, 200, 200, 200, 200)),
    Row("api:campaign-list", "POST", E(401, 401, 403, 400, 400, 400), data=lambda w: {}, json=True),
    Row("api:campaign-detail", "GET", E(401, 401, 200, 404, 200, 200), kwargs=_pk("campaign")),
    Row(
        "api:campaign-launch",
        "POST",
        E(401, 401, 403, 404, 200, 400),
        kwargs=_pk("campaign"),
        data=lambda w: {},
        json=True,
    ),
    Row(
        "api:campaign-pause",
        "POST",
        E(401, 401, 403, 404, 409, 409),
        kwargs=_pk("campaign"),
        data=lambda w: {},
        json=True,
    ),
    Row(
        "api:campaign-resume",
        "POST",
        E(401, 401, 403, 404, 409, 409),
        kwargs=_pk("campaign"),
        data=lambda w: {},
        json=True,
    ),
    Row(
        "api:campaign-cancel",
        "POST",
        E(401, 401, 403, 404, 200, 200),
        kwargs=_pk("campaign"),
        data=lambda w: {},
        json=True,
    ),
    Row(
        "api:campaign-retry-failed",
        "POST",
        E(401, 401, 403, 404, 409, 409),
        kwargs=_pk("campaign"),
        data=lambda w: {},
        json=True,
    ),
    Row("api:campaign-preview", "GET", E(401, 401, 200, 404, 200, 200), kwargs=_pk("campaign")),
    Row("api:campaign-stats", "GET", E(401, 401, 200, 404, 200, 200), kwargs=_pk("campaign")),
    Row("api:message-list", "GET", E(401, 401, 200, 200, 200, 200)),
    Row("api:message-send", "POST", E(401, 401, 403, 400, 400, 400), data=lambda w: {}, json=True),
    Row("api:message-detail", "GET", E(401, 401, 404, 404, 404, 404), kwargs=lambda w: {"pk": NONE}),
    Row("api:inbound-message-list", "GET", E(401, 401, 200, 200, 200, 200)),
    Row("api:inbound-message-detail", "GET", E(401, 401, 404, 404, 404, 404), kwargs=lambda w: {"pk": NONE}),
    Row("api:sender-list", "GET", E(401, 401, 200, 200, 200, 200)),
    Row("api:sender-detail", "GET", E(401, 401, 404, 404, 200, 200), kwargs=_pk("grant")),
    # Public on purpose (api app): the schema describes endpoints, never data. Flagged for review.
    Row("api-schema", "GET", E(200, 200, 200, 200, 200, 200), note="public API description"),
    Row("api-docs", "GET", E(200, 200, 200, 200, 200, 200), note="public API description"),
]

ROWS: list[Row] = [*ACCOUNTS_ROWS, *CAMPAIGN_WEB_ROWS, *RELAY_ROWS, *RECIPIENT_ROWS, *API_ROWS]

# URL names (or route prefixes) deliberately outside the matrix, with the reason.
EXEMPT_NAMESPACES = {
    "admin": "Django admin: staff-only by the admin site itself; audited in accounts/admin.py",
    "webhooks": "provider callbacks: authenticated by signatures/secrets, covered by tests/providers",
}
EXEMPT_ROUTE_PREFIXES = {
    "accounts/": "django-allauth's sign-in flows: public by design; refusal is tested in test_oidc_sign_in.py",
    "static/": "static files",
}
EXEMPT_NAMES = {
    "health": "monitoring probe: public by design, reveals only reachability",
    "short_link": "tracked link redirect: public by design (recipients have no login); tests/campaigns/test_short_links.py",
}


# --- The persona fixture ----------------------------------------------------------


@pytest.fixture
def world(make_user, make_sender, make_recipients, make_campaign) -> World:
    from accounts.services import api_token_create

    users = {
        "unapproved": make_user("uma", role="admin", is_approved=False),
        "viewer": make_user("vic", role="viewer"),
        "sender_other": make_user("otto", role="sender"),
        "sender": make_user("sam", role="sender"),
        "admin": make_user("ada", role="admin"),
    }
    grant = make_sender(users["sender"], number="+14155550100")
    other_grant = make_sender(users["sender_other"], number="+14155550111")
    recipients = make_recipients(3, recipient_list="Members")
    from recipients.models import RecipientList

    recipient_list = RecipientList.objects.get(name="Members")
    campaign = make_campaign(users["sender"], lists=[recipient_list], senders=[grant])
    token, _ = api_token_create(actor=users["sender"], user=users["sender"], name="sam's integration")
    return World(users, grant, other_grant, recipient_list, recipients, campaign, token)


def _request(client, world: World, persona: str, row: Row):
    if persona != "anonymous":
        client.force_login(world.users[persona])
    url = reverse(row.name, kwargs=row.kwargs(world))
    data = row.data(world) if row.data else None
    call = getattr(client, row.method.lower())
    if row.json:
        return call(url, data or {}, content_type="application/json")
    return call(url, data) if data is not None else call(url)


CASES = [pytest.param(row, persona, id=f"{row.id}-{persona}") for row in ROWS for persona in PERSONAS]


@pytest.mark.parametrize(("row", "persona"), CASES)
def test_matrix(client, world, row: Row, persona: str) -> None:
    response = _request(client, world, persona, row)
    if os.environ.get("ACCT_MATRIX_OBSERVE"):
        print(f"OBSERVED {row.id} {persona} {response.status_code}")
        return
    expected = row.expect[persona]
    assert response.status_code == expected, (
        f"{row.method} {row.name} as {persona}: got {response.status_code}, expected {expected}"
    )
    if persona in ("anonymous", "unapproved") and expected == 302:
        assert response["Location"].startswith(reverse("account_login"))


# --- Every URL must be in the matrix ---------------------------------------------


def _walk(patterns, prefix: str = "", namespace: str | None = None):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            ns = namespace
            if pattern.namespace:
                ns = f"{namespace}:{pattern.namespace}" if namespace else pattern.namespace
            yield from _walk(pattern.url_patterns, prefix + str(pattern.pattern), ns)
        elif isinstance(pattern, URLPattern):
            name = f"{namespace}:{pattern.name}" if namespace and pattern.name else pattern.name
            yield prefix + str(pattern.pattern), name, namespace


def uncovered_urls() -> list[str]:
    covered = {row.name for row in ROWS}
    missing = []
    for route, name, namespace in _walk(get_resolver().url_patterns):
        if route.startswith(tuple(EXEMPT_ROUTE_PREFIXES)):
            continue
        if namespace and namespace.split(":")[0] in EXEMPT_NAMESPACES:
            continue
        if name in EXEMPT_NAMES or name in covered:
            continue
        missing.append(f"{route} (name={name!r})")
    return missing


def test_every_url_has_a_row() -> None:
    missing = uncovered_urls()
    assert not missing, "URLs without an authorization-matrix row or exemption:\n  " + "\n  ".join(missing)


def test_every_row_has_every_persona() -> None:
    for row in ROWS:
        assert set(row.expect) == set(PERSONAS), row.id
