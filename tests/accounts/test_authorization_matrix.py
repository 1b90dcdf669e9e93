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
from django.contrib.auth.models import Permission
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from accounts.models import AuditEvent, User

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
    redirects_to: str = ""  # a public redirect's target (else a 302 for a signed-out visitor goes to sign-in)

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


def _short_link_code(w: World) -> str:
    from campaigns.shortlinks import links_for

    wanted = (w.campaign.pk, w.recipients[0].pk, "https://example.com/offer")  # the row's redirects_to
    return links_for([wanted])[wanted].rsplit("/", 1)[1]  # the short URL's code


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
    # Another sender's campaign does not exist for sender_other: 404 on every page, as in the API.
    Row("campaign_detail", "GET", E(302, 302, 200, 404, 200, 200), kwargs=lambda w: {"pk": w.campaign.pk}),
    Row("campaign_status", "GET", E(302, 302, 200, 404, 200, 200), kwargs=lambda w: {"pk": w.campaign.pk}),
    Row("campaign_activity", "GET", E(302, 302, 200, 404, 200, 200), kwargs=lambda w: {"pk": w.campaign.pk}),
    Row("campaign_export", "GET", E(302, 302, 200, 404, 200, 200), kwargs=lambda w: {"pk": w.campaign.pk}),
    # Tracked links are public by design (recipients have no login): the same answer for everyone.
    Row(
        "short_link",
        "GET",
        dict.fromkeys(PERSONAS, 302),
        kwargs=lambda w: {"code": _short_link_code(w)},
        redirects_to="https://example.com/offer",
    ),
    Row("short_link", "GET", dict.fromkeys(PERSONAS, 404), kwargs=lambda w: {"code": "NoSuchCode"}),
    Row("first_run_dismiss", "POST", access("viewer", 302)),
    Row("favicon", "GET", dict.fromkeys(PERSONAS, 301), note="a permanent redirect to the static icon, for everyone"),
    Row("campaign_edit", "GET", E(302, 302, 403, 404, 200, 200), kwargs=lambda w: {"pk": w.campaign.pk}),
    Row("campaign_confirm", "GET", E(302, 302, 403, 404, 200, 200), kwargs=lambda w: {"pk": w.campaign.pk}),
    Row(
        "campaign_confirm",
        "POST",
        E(302, 302, 403, 404, 302, 400),
        kwargs=lambda w: {"pk": w.campaign.pk},
        data=lambda w: {},
    ),
    Row("campaign_pause", "POST", E(302, 302, 403, 404, 302, 302), kwargs=lambda w: {"pk": w.campaign.pk}),
    Row("campaign_resume", "POST", E(302, 302, 403, 404, 302, 302), kwargs=lambda w: {"pk": w.campaign.pk}),
    Row("campaign_cancel", "POST", E(302, 302, 403, 404, 302, 302), kwargs=lambda w: {"pk": w.campaign.pk}),
    Row("campaign_retry_failed", "POST", E(302, 302, 403, 404, 302, 302), kwargs=lambda w: {"pk": w.campaign.pk}),
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


def _inbound(w: World):
    """A message one of the world's recipients sent to the sender's number."""
    if "inbound" not in w.extra:
        from recipients.models import InboundMessage

        w.extra["inbound"] = InboundMessage.objects.create(
            provider="plivo", sender=w.recipients[0].phone, to=w.grant.number, text="Hello?"
        )
    return w.extra["inbound"]


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


def _draft_import(w: World):
    """An uploaded import waiting for its column mapping (the file outside MEDIA_ROOT: never deleted)."""
    if "draft_import" not in w.extra:
        import tempfile

        from recipients.models import ImportJob

        with tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False) as f:
            f.write("phone,name\n4155550101,Ann\n")
        w.extra["draft_import"] = ImportJob.objects.create(
            recipient_list=w.recipient_list,
            created_by=w.users["sender"],
            file=f.name,
            original_name="members.csv",
            status=ImportJob.Status.DRAFT,
        )
    return w.extra["draft_import"]


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
    # The shared list: senders use it (add people, import) but only an admin renames or archives it
    # (their own lists: OBJECT_ROWS).
    Row("recipients:list_rename", "POST", access("admin", 302), kwargs=_list_pk, data=lambda w: {"name": "Renamed"}),
    Row("recipients:list_archive", "POST", access("admin", 302), kwargs=_list_pk, data=lambda w: {"archived": "1"}),
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
    Row("recipients:list_import", "GET", access("sender"), kwargs=_list_pk, note="the import page's upload step"),
    Row(
        "recipients:list_import",
        "POST",
        access("sender", 400),
        kwargs=_list_pk,
        data=lambda w: {},
        note="no file: the upload form again, with its error",
    ),
    Row("recipients:import_mapping", "GET", access("sender"), kwargs=lambda w: {"pk": _draft_import(w).pk}),
    Row(
        "recipients:import_mapping",
        "POST",
        access("sender", 400),
        kwargs=lambda w: {"pk": _draft_import(w).pk},
        data=lambda w: {},
        note="no column chosen as phone: the mapping form again, with its error",
    ),
    Row("recipients:import_detail", "GET", access("viewer"), kwargs=lambda w: {"pk": _import_job(w).pk}),
    Row("recipients:import_errors_csv", "GET", access("viewer"), kwargs=lambda w: {"pk": _import_job(w).pk}),
    Row("recipients:consent_export", "GET", access("viewer")),
    Row("recipients:inbox", "GET", access("viewer")),
    # The text was sent to ``sender``'s number: another sender does not see it (404, the inbound rule).
    Row("recipients:inbox_reply", "GET", access("sender", sender_other=404), kwargs=lambda w: {"pk": _inbound(w).pk}),
    Row(
        "recipients:inbox_reply",
        "POST",
        access("sender", 302, sender_other=404, admin=400),
        kwargs=lambda w: {"pk": _inbound(w).pk},
        data=lambda w: {"body": "Thanks!"},
        note="a reply goes out from the number they wrote to: only someone granted that number sends it",
    ),
    Row(
        "recipients:recipients_root",
        "GET",
        dict.fromkeys(PERSONAS, 301),
        note="/recipients/ has no page: a permanent redirect to the lists for everyone, which then checks the role",
    ),
    Row(
        "recipients:lists_short",
        "GET",
        dict.fromkeys(PERSONAS, 301),
        note="/lists/: a permanent redirect to /recipients/lists/ for everyone, which then checks the role",
    ),
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
    Row(
        "api:list-imports",
        "POST",
        E(401, 401, 403, 400, 400, 400),
        kwargs=_pk("recipient_list"),
        data=lambda w: {},
        note="no file: 400 once the role allows importing (a real upload is in tests/api/test_imports.py)",
    ),
    Row("api:list-imports", "POST", E(401, 401, 403, 404, 404, 404), kwargs=lambda w: {"pk": NONE}, data=lambda w: {}),
    Row("api:import-list", "GET", E(401, 401, 200, 200, 200, 200)),
    Row("api:import-detail", "GET", E(401, 401, 200, 200, 200, 200), kwargs=lambda w: {"pk": _import_job(w).pk}),
    Row("api:import-detail", "GET", E(401, 401, 404, 404, 404, 404), kwargs=lambda w: {"pk": NONE}),
    Row(
        "api:import-rejected-rows",
        "GET",
        E(401, 401, 200, 200, 200, 200),
        kwargs=lambda w: {"pk": _import_job(w).pk},
    ),
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


def _endpoint(w: World):
    if "endpoint" not in w.extra:
        from events.models import WebhookEndpoint

        w.extra["endpoint"] = WebhookEndpoint.objects.create(url="https://hooks.example.com/in", is_active=False)
    return w.extra["endpoint"]


def _endpoint_pk(w: World) -> dict:
    return {"pk": _endpoint(w).pk}


def _outbox_pk(w: World) -> dict:
    from events.models import OutboxEvent

    event = OutboxEvent.objects.create(endpoint=_endpoint(w), event_type="message.sent", payload={"type": "x"})
    return {"pk": event.pk}


# Integrations (issue 18): campaign history, the double opt-in request, API tokens, event webhooks.
INTEGRATION_ROWS = [
    Row("api:campaign-events", "GET", E(401, 401, 200, 404, 200, 200), kwargs=_pk("campaign")),
    Row(
        "api:recipient-confirmation-request",
        "POST",
        E(401, 401, 403, 409, 409, 409),
        kwargs=_recipient_pk,
        data=lambda w: {},
        json=True,
        note="the world's recipients are opted in: 409 already_opted_in for everyone who may send",
    ),
    # API tokens: everyone approved manages their own; admins everyone's; others' are 404.
    Row("api:token-list", "GET", E(401, 401, 200, 200, 200, 200)),
    Row(
        "api:token-list",
        "POST",
        E(401, 401, 201, 201, 201, 201),
        data=lambda w: {"name": "new", "scopes": ["read"]},
        json=True,
    ),
    Row("api:token-detail", "GET", E(401, 401, 404, 404, 200, 200), kwargs=_pk("token")),
    Row("api:token-detail", "DELETE", E(401, 401, 404, 404, 204, 204), kwargs=_pk("token")),
    # Event webhooks: admins only.
    Row("api:webhook-endpoint-list", "GET", E(401, 401, 403, 403, 403, 200)),
    Row(
        "api:webhook-endpoint-list",
        "POST",
        E(401, 401, 403, 403, 403, 201),
        data=lambda w: {"url": "https://hooks.example.com/sms"},
        json=True,
    ),
    Row("api:webhook-endpoint-detail", "GET", E(401, 401, 403, 403, 403, 200), kwargs=_endpoint_pk),
    Row(
        "api:webhook-endpoint-detail",
        "PATCH",
        E(401, 401, 403, 403, 403, 200),
        kwargs=_endpoint_pk,
        data=lambda w: {"description": "renamed"},
        json=True,
    ),
    Row("api:webhook-endpoint-rotate-secret", "POST", E(401, 401, 403, 403, 403, 200), kwargs=_endpoint_pk),
    Row("api:webhook-event-list", "GET", E(401, 401, 403, 403, 403, 200)),
    Row("api:webhook-event-detail", "GET", E(401, 401, 403, 403, 403, 200), kwargs=_outbox_pk),
    Row("api:webhook-event-resend", "POST", E(401, 401, 403, 403, 403, 202), kwargs=_outbox_pk),
]


# --- Object level: one visibility rule per object type, the same for pages and API -------------
# Who sees each of ``sender``'s objects (the rules are the selectors': campaigns.selectors,
# recipients.selectors, messaging.selectors, accounts.selectors). A persona that does not see an
# object gets 404 from every page and endpoint that reads or changes it, whatever its role would
# allow; a role that may not do the action at all is refused first (403), which reveals nothing.
SEES = {
    "campaign": ("viewer", "sender", "admin"),  # sender: the campaigns they created
    "list": ("viewer", "sender", "admin"),  # sender: their own lists and shared ones (no owner / an admin's)
    "shared_list": ("viewer", "sender_other", "sender", "admin"),
    "import": ("viewer", "sender", "admin"),  # imports follow their list
    "message": ("viewer", "sender", "admin"),  # messages follow campaigns (or who sent them)
    "inbound": ("viewer", "sender", "admin"),  # sender: texts to the numbers they hold
    "grant": ("sender", "admin"),  # sender grants: your own; admins all
    "recipient": ("viewer", "sender_other", "sender", "admin"),  # recipients are shared by the portal
}


def owned(obj: str, expect: dict[str, int]) -> dict[str, int]:
    """``expect`` (what the role allows), with 404 for approved personas that do not see ``obj``."""
    unseen = set(PERSONAS) - set(SEES[obj]) - {"anonymous", "unapproved"}
    return {p: 404 if p in unseen and s not in (401, 403, 405) else s for p, s in expect.items()}


def _own_list(w: World):
    """A list ``sender`` created (so it is theirs, not shared), with one member."""
    if "own_list" not in w.extra:
        from recipients.models import Membership, RecipientList

        w.extra["own_list"] = lst = RecipientList.objects.create(name="Sam's list", created_by=w.users["sender"])
        Membership.objects.create(recipient_list=lst, recipient=w.recipients[0])
    return w.extra["own_list"]


def _own_import(w: World):
    if "own_import" not in w.extra:
        from recipients.models import ImportJob

        w.extra["own_import"] = ImportJob.objects.create(
            recipient_list=_own_list(w),
            created_by=w.users["sender"],
            file="imports/none.csv",
            original_name="sam.csv",
            status=ImportJob.Status.COMPLETED,
        )
    return w.extra["own_import"]


def _campaign_message(w: World):
    if "message" not in w.extra:
        from messaging.models import Message

        w.extra["message"] = Message.objects.create(
            campaign=w.campaign, recipient=w.recipients[0], to=w.recipients[0].phone, body="Hello from Sam"
        )
    return w.extra["message"]


def _inbound_to_sender(w: World):
    """A text someone sent to ``sender``'s number."""
    if "inbound" not in w.extra:
        from recipients.models import InboundMessage

        w.extra["inbound"] = InboundMessage.objects.create(
            provider="plivo",
            sender=w.recipients[1].phone,
            recipient=w.recipients[1],
            to=w.grant.number,
            text="Reply for Sam only",
        )
    return w.extra["inbound"]


def _own_list_pk(w: World) -> dict:
    return {"pk": _own_list(w).pk}


OBJECT_ROWS = [
    # The sender's own list: pages and API agree.
    Row("recipients:list_detail", "GET", owned("list", access("viewer")), kwargs=_own_list_pk),
    Row("recipients:list_export", "GET", owned("list", access("viewer")), kwargs=_own_list_pk),
    Row(
        "recipients:consent_export",
        "GET",
        owned("list", access("viewer")),
        data=lambda w: {"list": _own_list(w).pk},
        note="the list's consent history",
    ),
    Row(
        "recipients:list_rename",
        "POST",
        owned("list", access("sender", 302)),
        kwargs=_own_list_pk,
        data=lambda w: {"name": "Renamed"},
    ),
    Row(
        "recipients:list_archive",
        "POST",
        owned("list", access("sender", 302)),
        kwargs=_own_list_pk,
        data=lambda w: {"archived": "1"},
    ),
    Row(
        "recipients:list_add_member",
        "POST",
        owned("list", access("sender", 302)),
        kwargs=_own_list_pk,
        data=lambda w: {"phone": "+14155550199"},
    ),
    Row(
        "recipients:list_remove_member",
        "POST",
        owned("list", access("sender", 302)),
        kwargs=lambda w: {"pk": _own_list(w).pk, "recipient_pk": w.recipients[0].pk},
    ),
    Row(
        "recipients:list_import",
        "POST",
        owned("list", access("sender", 400)),
        kwargs=_own_list_pk,
        data=lambda w: {},
        note="no file: the upload form again, with its error",
    ),
    Row(
        "recipients:import_detail", "GET", owned("import", access("viewer")), kwargs=lambda w: {"pk": _own_import(w).pk}
    ),
    Row(
        "recipients:import_errors_csv",
        "GET",
        owned("import", access("viewer")),
        kwargs=lambda w: {"pk": _own_import(w).pk},
    ),
    Row("api:list-detail", "GET", owned("list", api("viewer")), kwargs=_own_list_pk),
    Row(
        "api:list-detail",
        "PATCH",
        owned("list", api("sender")),
        kwargs=_own_list_pk,
        data=lambda w: {"description": "changed"},
        json=True,
    ),
    Row("api:list-detail", "DELETE", owned("list", api("sender", 204)), kwargs=_own_list_pk, note="archives"),
    # A shared list (nobody's): every sender reads it and imports into it; only an admin renames or
    # archives it (recipients.selectors.recipient_lists_manageable_by), in the API as on the page.
    Row("api:list-detail", "DELETE", owned("shared_list", api("admin", 204)), kwargs=_pk("recipient_list")),
    Row(
        "api:list-detail",
        "PATCH",
        owned("shared_list", api("admin")),
        kwargs=_pk("recipient_list"),
        data=lambda w: {"description": "x"},
        json=True,
    ),
    # A message of the sender's campaign, and a text to the sender's number.
    Row("api:message-detail", "GET", owned("message", api("viewer")), kwargs=lambda w: {"pk": _campaign_message(w).pk}),
    Row(
        "api:inbound-message-detail",
        "GET",
        owned("inbound", api("viewer")),
        kwargs=lambda w: {"pk": _inbound_to_sender(w).pk},
    ),
    Row(
        "api:recipient-detail",
        "PATCH",
        owned("recipient", api("sender")),
        kwargs=_recipient_pk,
        data=lambda w: {"first_name": "Al"},
        json=True,
    ),
    # The campaign's writes through the API, where the page rows above have them too.
    Row(
        "api:campaign-detail",
        "PATCH",
        owned("campaign", api("sender")),
        kwargs=_pk("campaign"),
        data=lambda w: {"name": "Renamed"},
        json=True,
    ),
    Row("api:campaign-detail", "DELETE", owned("campaign", api("sender", 204)), kwargs=_pk("campaign")),
    Row("api:sender-detail", "GET", owned("grant", api("viewer", sender_other=404, viewer=404)), kwargs=_pk("grant")),
]

ROWS: list[Row] = [
    *ACCOUNTS_ROWS,
    *CAMPAIGN_WEB_ROWS,
    *RELAY_ROWS,
    *RECIPIENT_ROWS,
    *API_ROWS,
    *INTEGRATION_ROWS,
    *OBJECT_ROWS,
]

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


# Object rows repeat URLs whose anonymous/unapproved answers the rows above already check: signed-in only.
_SIGNED_OUT = {"anonymous", "unapproved"}
_OBJECT_ROW_IDS = {id(row) for row in OBJECT_ROWS}
CASES = [
    pytest.param(row, persona, id=f"{row.id}-{persona}")
    for row in ROWS
    for persona in PERSONAS
    if not (id(row) in _OBJECT_ROW_IDS and persona in _SIGNED_OUT)
]


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
    if row.redirects_to and expected == 302:
        assert response["Location"] == row.redirects_to
    elif persona in ("anonymous", "unapproved") and expected == 302:
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


# --- Lists of objects: pages, API, Django admin and the composer agree -------------------------

APPROVED = ("viewer", "sender_other", "sender", "admin")


@pytest.mark.parametrize("persona", APPROVED)
def test_pages_and_api_list_the_same_objects(client, world: World, persona: str) -> None:
    from rest_framework.test import APIClient

    from accounts.services import api_token_create

    user = world.users[persona]
    world.campaign.name = "Sam's campaign"
    world.campaign.save()
    own_list, message, inbound = _own_list(world), _campaign_message(world), _inbound_to_sender(world)
    client.force_login(user)
    _, raw = api_token_create(actor=user, user=user, name="t")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")

    def api_ids(path: str) -> set[int]:
        return {row["id"] for row in api.get(path).json()["results"]}

    def page(name: str) -> str:
        response = client.get(reverse(name))
        assert response.status_code == 200
        return response.content.decode()

    sees = {obj: persona in who for obj, who in SEES.items()}
    # campaigns: list page, dashboard, API
    assert ("Sam&#x27;s campaign" in page("campaign_list")) is sees["campaign"]
    assert ("Sam&#x27;s campaign" in page("dashboard")) is sees["campaign"]
    assert (world.campaign.pk in api_ids("/api/v1/campaigns")) is sees["campaign"]
    # lists: list page, API, the composer's choices
    assert ("Sam&#x27;s list" in page("recipients:list_index")) is sees["list"]
    assert (own_list.pk in api_ids("/api/v1/lists")) is sees["list"]
    assert world.recipient_list.pk in api_ids("/api/v1/lists")  # shared: everyone
    if persona != "viewer":
        assert ("Sam&#x27;s list" in page("campaign_new")) is sees["list"]
    # messages and texts to the sender's number: inbox, the recipient's page, API
    assert ("Reply for Sam only" in page("recipients:inbox")) is sees["inbound"]
    detail = client.get(reverse("recipients:recipient_detail", args=[world.recipients[1].pk])).content.decode()
    assert ("Reply for Sam only" in detail) is sees["inbound"]
    member = client.get(reverse("recipients:recipient_detail", args=[world.recipients[0].pk])).content.decode()
    assert ("Sam&#x27;s list" in member) is sees["list"]  # the lists a person is in: only those you see
    assert (inbound.pk in api_ids("/api/v1/inbound-messages")) is sees["inbound"]
    assert (message.pk in api_ids("/api/v1/messages")) is sees["message"]


def test_a_sender_cannot_target_another_senders_list(world: World) -> None:
    from django.core.exceptions import ValidationError

    from campaigns.drafts import campaign_create_draft

    with pytest.raises(ValidationError, match="own lists"):
        campaign_create_draft(user=world.users["sender_other"], lists=[_own_list(world)], name="x", body="y")
    campaign = campaign_create_draft(user=world.users["sender"], lists=[_own_list(world)], name="x", body="y")
    assert list(campaign.lists.all()) == [_own_list(world)]


def test_api_delete_of_a_list_archives_it_and_another_sender_gets_404(world: World) -> None:
    from rest_framework.test import APIClient

    from recipients.models import Membership

    own = _own_list(world)
    api = APIClient()
    api.force_authenticate(world.users["sender_other"])
    assert api.delete(f"/api/v1/lists/{own.pk}").status_code == 404
    own.refresh_from_db()
    assert not own.is_archived
    api.force_authenticate(world.users["sender"])
    assert api.delete(f"/api/v1/lists/{own.pk}").status_code == 204
    own.refresh_from_db()
    assert own.is_archived and Membership.objects.filter(recipient_list=own).count() == 1


# --- Only a superuser changes a superuser ---------------------------------------------------------


@pytest.fixture
def root(make_user) -> User:
    return make_user("root", role="admin", is_superuser=True, is_staff=True, is_approved=True)


@pytest.fixture
def staff_admin(make_user) -> User:
    """A portal admin with Django admin access and every user permission, but not a superuser."""
    user = make_user("ada", role="admin", is_staff=True, is_approved=True)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="accounts"))
    return user


def test_an_admin_cannot_demote_or_lock_out_the_superuser(client, root, staff_admin) -> None:
    from django.core.exceptions import PermissionDenied

    from accounts import services

    with pytest.raises(PermissionDenied):
        services.user_set_role(actor=staff_admin, user=root, role="viewer")
    with pytest.raises(PermissionDenied):
        services.user_set_access(actor=staff_admin, user=root, is_approved=False, is_active=False)
    client.force_login(staff_admin)
    response = client.post(
        reverse("accounts:user_edit", args=[root.pk]), {"role": "viewer", "is_approved": "", "is_active": ""}
    )
    assert response.status_code == 403
    root.refresh_from_db()
    assert (root.role, root.is_active, root.is_approved, root.is_superuser) == ("admin", True, True, True)
    assert not AuditEvent.objects.filter(target_id=str(root.pk)).exists()
    # A superuser may.
    services.user_set_role(actor=root, user=staff_admin, role="sender")
    assert User.objects.get(pk=staff_admin.pk).role == "sender"


def test_django_admin_keeps_the_superuser_out_of_reach_of_staff(client, root, staff_admin, make_user) -> None:
    client.force_login(staff_admin)
    change = reverse("admin:accounts_user_change", args=[root.pk])
    page = client.get(change)
    assert page.status_code == 200  # read-only view
    assert client.post(change, {"username": "root", "role": "viewer"}).status_code == 403
    assert client.post(reverse("admin:accounts_user_delete", args=[root.pk]), {"post": "yes"}).status_code == 403
    root.refresh_from_db()
    assert (root.role, root.is_active, root.is_superuser) == ("admin", True, True)
    # Nor can staff make themselves (or anyone) a superuser: those fields are read-only for them.
    from django.contrib import admin
    from django.test import RequestFactory

    request = RequestFactory().get("/")
    request.user = staff_admin
    readonly = admin.site._registry[User].get_readonly_fields(request, make_user("dave"))
    assert {"is_superuser", "is_staff", "user_permissions", "groups"} <= set(readonly)
    request.user = root
    assert "is_superuser" not in admin.site._registry[User].get_readonly_fields(request, staff_admin)


def test_django_admin_lists_follow_the_visibility_rules(client, world: World) -> None:
    sender = world.users["sender_other"]
    sender.is_staff = True
    sender.save()
    sender.user_permissions.set(Permission.objects.filter(codename__in=["view_campaign", "view_recipientlist"]))
    client.force_login(sender)
    assert client.get(reverse("admin:campaigns_campaign_change", args=[world.campaign.pk])).status_code == 302
    page = client.get(reverse("admin:recipients_recipientlist_changelist")).content.decode()
    assert "Sam&#x27;s list" not in page and _own_list(world).name
    assert "Members" in page


def test_the_api_does_not_take_another_senders_list_as_a_target(world: World) -> None:
    from rest_framework.test import APIClient

    from recipients.models import Membership

    own = _own_list(world)
    api = APIClient()
    api.force_authenticate(world.users["sender_other"])
    for path, body in [
        ("/api/v1/recipients", {"phone": "+14155550177", "lists": [own.pk]}),
        ("/api/v1/recipients/bulk", {"list": own.pk, "recipients": [{"phone": "+14155550178"}]}),
        ("/api/v1/campaigns", {"name": "x", "body": "y", "lists": [own.pk]}),
    ]:
        response = api.post(path, body, format="json")
        assert response.status_code == 400, (path, response.content)
        assert "does not exist" in response.content.decode(), path  # as if there were no such list
    assert Membership.objects.filter(recipient_list=own).count() == 1
    api.force_authenticate(world.users["sender"])
    bulk = {"list": own.pk, "recipients": [{"phone": "+14155550178"}]}
    assert api.post("/api/v1/recipients/bulk", bulk, format="json").status_code == 200
    assert Membership.objects.filter(recipient_list=own).count() == 2
