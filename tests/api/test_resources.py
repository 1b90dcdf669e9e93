"""Lists, recipients (CRUD, bulk upsert, consent), messages (filters, cursor pages), inbound, senders."""

import pytest

from accounts.models import AuditEvent, AuthorizedSender
from messaging.models import Message
from recipients.models import ConsentEvent, InboundMessage, Membership, Recipient, RecipientList
from recipients.upsert import KEPT_OPTED_OUT

# --- persona matrix: every endpoint refuses anonymous people, viewers only read -----------------

READS = [
    "/api/v1/lists",
    "/api/v1/recipients",
    "/api/v1/campaigns",
    "/api/v1/messages",
    "/api/v1/inbound-messages",
    "/api/v1/senders",
]
WRITES = [
    ("post", "/api/v1/lists", {"name": "n"}),
    ("post", "/api/v1/recipients", {"phone": "+14155552671"}),
    ("post", "/api/v1/recipients/bulk", {"recipients": [{"phone": "+14155552671"}]}),
    ("post", "/api/v1/campaigns", {"name": "c", "body": "b"}),
    ("post", "/api/v1/messages/send", {"to": "+14155552671", "body": "b"}),
    ("post", "/api/v1/senders", {"user": 1, "number": "+14155550100"}),
]


@pytest.mark.parametrize("path", READS)
def test_anonymous_reads_are_401(db, client_for, path):
    assert client_for(None).get(path).status_code == 401


@pytest.mark.parametrize(("method", "path", "payload"), WRITES)
def test_anonymous_writes_are_401(db, client_for, method, path, payload):
    response = getattr(client_for(None), method)(path, payload, format="json")
    assert response.status_code == 401
    assert response.json()["message"]


@pytest.mark.parametrize("path", READS)
def test_viewers_may_read(carol, client_for, path):
    response = client_for(carol).get(path)
    assert response.status_code == 200
    assert "results" in response.json()


@pytest.mark.parametrize(("method", "path", "payload"), WRITES)
def test_viewers_may_not_write(carol, client_for, method, path, payload):
    response = getattr(client_for(carol), method)(path, payload, format="json")
    assert response.status_code == 403
    assert not RecipientList.objects.exists() and not Recipient.objects.exists()


def test_unapproved_users_are_refused(make_user, client_for):
    user = make_user("eve", role="admin", is_approved=False)
    assert client_for(user).get("/api/v1/lists").status_code == 403


# --- lists ------------------------------------------------------------------------------------


def test_list_crud(bob, client_for):
    client = client_for(bob)
    created = client.post("/api/v1/lists", {"name": "Customers", "description": "all"}, format="json")
    assert created.status_code == 201
    pk = created.json()["id"]
    assert RecipientList.objects.get(pk=pk).created_by == bob
    assert client.post("/api/v1/lists", {"name": "Customers"}, format="json").status_code == 400  # unique
    assert client.patch(f"/api/v1/lists/{pk}", {"is_archived": True}, format="json").json()["is_archived"] is True
    assert client.get(f"/api/v1/lists/{pk}").json()["name"] == "Customers"
    client.patch(f"/api/v1/lists/{pk}", {"is_archived": False}, format="json")
    assert client.delete(f"/api/v1/lists/{pk}").status_code == 204
    # DELETE archives, as the web page does: the list, its members and history stay (issue 16, finding 7).
    assert client.get(f"/api/v1/lists/{pk}").json()["is_archived"] is True
    assert AuditEvent.objects.filter(action="list.archive", target_id=str(pk), actor=bob).exists()


# --- recipients -----------------------------------------------------------------------------


def test_a_sender_cannot_take_a_recipient_out_of_another_senders_list_or_learn_its_id(
    bob, make_user, make_recipients, client_for
):
    dave = make_user("dave", role="sender")
    daves = RecipientList.objects.create(name="dave's", created_by=dave)
    bobs = RecipientList.objects.create(name="bob's", created_by=bob)
    person = make_recipients(1, recipient_list=daves)[0]
    client = client_for(bob)
    assert client.get(f"/api/v1/recipients/{person.pk}").json()["lists"] == []
    # Bob replaces the lists he sees: dave's membership is not his to change.
    response = client.patch(f"/api/v1/recipients/{person.pk}", {"lists": [bobs.pk]}, format="json")
    assert response.status_code == 200 and response.json()["lists"] == [bobs.pk]
    assert client.patch(f"/api/v1/recipients/{person.pk}", {"lists": []}, format="json").json()["lists"] == []
    assert set(person.lists.values_list("pk", flat=True)) == {daves.pk}
    assert client_for(dave).get(f"/api/v1/recipients/{person.pk}").json()["lists"] == [daves.pk]


def test_recipient_crud_normalizes_numbers_and_keeps_consent_pending(bob, client_for):
    client = client_for(bob)
    lst = RecipientList.objects.create(name="vip")
    created = client.post(
        "/api/v1/recipients",
        {"phone": "(415) 555-2671", "first_name": "Ann", "attributes": {"city": "SF"}, "lists": [lst.pk]},
        format="json",
    )
    assert created.status_code == 201, created.json()
    body = created.json()
    assert (body["phone"], body["consent_status"], body["lists"]) == ("+14155552671", "pending", [lst.pk])
    dup = client.post("/api/v1/recipients", {"phone": "+1 415 555 2671"}, format="json")
    assert dup.status_code == 400 and "already exists" in dup.json()["errors"]["phone"][0]
    bad = client.post("/api/v1/recipients", {"phone": "+1 555"}, format="json")
    assert bad.status_code == 400
    # consent is read-only here
    patched = client.patch(
        f"/api/v1/recipients/{body['id']}", {"consent_status": "opted_in", "last_name": "B"}, format="json"
    )
    assert patched.json()["consent_status"] == "pending" and patched.json()["last_name"] == "B"
    assert client.get("/api/v1/recipients", {"phone": "415-555-2671"}).json()["results"][0]["id"] == body["id"]
    assert client.get("/api/v1/recipients", {"list": lst.pk}).json()["results"][0]["id"] == body["id"]
    assert client.delete(f"/api/v1/recipients/{body['id']}").status_code == 204


def test_opt_in_opt_out_and_history(bob, client_for, make_recipients):
    [person] = make_recipients(1, consent="pending")
    client = client_for(bob)
    response = client.post(f"/api/v1/recipients/{person.pk}/opt-in", {"evidence": "signed form"}, format="json")
    assert response.status_code == 200 and response.json()["consent_status"] == "opted_in"
    response = client.post(f"/api/v1/recipients/{person.pk}/opt-out")
    assert response.json()["consent_status"] == "opted_out"
    history = client.get(f"/api/v1/recipients/{person.pk}/consent-history").json()
    assert [(e["from_status"], e["to_status"], e["channel"], e["actor"]) for e in history] == [
        ("opted_in", "opted_out", "api", "bob"),
        ("pending", "opted_in", "api", "bob"),
    ]
    assert history[1]["evidence"] == "signed form"
    # Only the person undoes their opt-out: 409 consent_revoked, nothing changes.
    response = client.post(f"/api/v1/recipients/{person.pk}/opt-in", {"evidence": "they said so"}, format="json")
    assert response.status_code == 409 and response.json()["code"] == "consent_revoked"
    assert ConsentEvent.objects.filter(recipient=person).count() == 2
    # Deleting them keeps the opt-out: the number comes back opted out.
    assert client.delete(f"/api/v1/recipients/{person.pk}").status_code == 204
    again = client.post("/api/v1/recipients", {"phone": person.phone}, format="json")
    assert again.status_code == 201 and again.json()["consent_status"] == "opted_out"


def test_bulk_upsert_reports_bad_rows_and_keeps_the_good(bob, client_for, make_recipients):
    [existing] = make_recipients(1, consent="pending")
    lst = RecipientList.objects.create(name="imported")
    rows = [
        {
            "phone": "+14155552671",
            "first_name": "New",
            "consent": "opted_in",
            "evidence": {"source": "signup form", "collected_at": "2024-05-01T10:00:00Z", "text": "Yes, text me"},
        },
        {"phone": existing.phone, "first_name": "Renamed", "attributes": {"tier": "gold"}},
        {"phone": "garbage"},
        {"phone": "+14155552671"},
        {"first_name": "no phone"},
        "not an object",
        {"phone": "+14155552699", "consent": "opted_in"},
        {"phone": "+14155552698", "consent": "opted_in", "evidence": {"source": "x", "collected_at": "2024-05-01"}},
    ] + [{"phone": f"+1415{3000000 + i:07d}"} for i in range(2000)]
    response = client_for(bob).post("/api/v1/recipients/bulk", {"list": lst.pk, "recipients": rows}, format="json")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["created"], body["updated"], body["failed"]) == (2001, 1, 6)
    assert [e["row"] for e in body["errors"]] == [3, 4, 5, 6, 7, 8]  # 1-based positions in "recipients"
    assert "opted_in needs evidence" in body["errors"][4]["errors"]["evidence"][0]
    assert "text or the URL" in str(body["errors"][5]["errors"]["evidence"])
    assert body["warnings"] == []
    assert "phone" in body["errors"][0]["errors"]
    existing.refresh_from_db()
    assert (existing.first_name, existing.attributes["tier"]) == ("Renamed", "gold")
    assert Membership.objects.filter(recipient_list=lst).count() == 2002
    new = Recipient.objects.get(phone="+14155552671")
    assert new.consent_status == "opted_in"
    event = ConsentEvent.objects.get(recipient=new)
    assert event.channel == "api" and "source 'signup form'; collected 2024-05-01T10:00:00+00:00" in event.evidence
    assert "text 'Yes, text me'" in event.evidence


def test_bulk_upsert_never_undoes_an_opt_out_like_an_import(bob, client_for, make_recipients):
    """The importer's rule, through the same code: the person must text START to opt back in."""
    out, pending = make_recipients(2, consent="opted_out")
    Recipient.objects.filter(pk=pending.pk).update(consent_status="pending")
    rows = [
        {"phone": "garbage"},
        {
            "phone": out.phone,
            "first_name": "Still out",
            "consent": "opted_in",
            "evidence": {"source": "signup form", "collected_at": "2024-05-01T10:00:00Z", "text": "Yes, text me"},
        },
        {"phone": pending.phone, "consent": "opted_out"},
    ]
    body = client_for(bob).post("/api/v1/recipients/bulk", {"recipients": rows}, format="json").json()
    assert (body["created"], body["updated"], body["failed"]) == (0, 2, 1)
    assert [e["row"] for e in body["errors"]] == [1]
    assert body["warnings"] == [{"row": 2, "errors": {"consent": [KEPT_OPTED_OUT]}}]
    out.refresh_from_db()
    assert (out.consent_status, out.first_name) == ("opted_out", "Still out")
    assert not ConsentEvent.objects.filter(recipient=out).exists()
    event = ConsentEvent.objects.get(recipient=pending)
    assert (event.to_status, event.channel, event.actor, event.evidence) == (
        "opted_out",
        "api",
        bob,
        "Stated in a bulk upsert through the API (rows numbered from 1), row 3",
    )
    audit = AuditEvent.objects.get(action="recipient.bulk_upsert")
    assert audit.actor == bob and "1 consent changes" in audit.detail and "1 kept opted out" in audit.detail


def test_bulk_upsert_merges_like_an_import(bob, client_for, make_recipients):
    [person] = make_recipients(1, consent="pending", city="SF")
    Recipient.objects.filter(pk=person.pk).update(last_name="Lee")
    rows = [{"phone": person.phone, "first_name": "", "last_name": "Li", "attributes": {"tier": "gold"}}]
    body = client_for(bob).post("/api/v1/recipients/bulk", {"recipients": rows}, format="json").json()
    assert (body["created"], body["updated"], body["failed"], body["warnings"]) == (0, 1, 0, [])
    person.refresh_from_db()
    # An empty name keeps the stored one; attributes are merged.
    assert (person.first_name, person.last_name, person.attributes) == ("P0", "Li", {"city": "SF", "tier": "gold"})


def test_recipient_create_update_delete_go_through_the_services(bob, client_for):
    client = client_for(bob)
    created = client.post("/api/v1/recipients", {"phone": "+14155552671", "attributes": {"a": 1}}, format="json")
    assert created.status_code == 201, created.json()
    pk = created.json()["id"]
    patched = client.patch(f"/api/v1/recipients/{pk}", {"attributes": {"b": 2}}, format="json")
    assert patched.json()["attributes"] == {"b": 2}  # one recipient's attributes are set, not merged
    put = client.put(f"/api/v1/recipients/{pk}", {"phone": "(415) 555-2671", "first_name": "Ann"}, format="json")
    assert put.status_code == 200 and put.json()["first_name"] == "Ann"
    moved = client.patch(f"/api/v1/recipients/{pk}", {"phone": "+14155552672"}, format="json")
    assert moved.status_code == 400 and "cannot be changed" in moved.json()["errors"]["phone"][0]
    assert Recipient.objects.get(pk=pk).phone == "+14155552671"
    assert client.delete(f"/api/v1/recipients/{pk}").status_code == 204
    actions = list(AuditEvent.objects.filter(target_id=str(pk)).order_by("pk").values_list("action", flat=True))
    assert actions == ["recipient.create", "recipient.update", "recipient.update", "recipient.delete"]


def test_bulk_upsert_is_bounded(bob, client_for):
    rows = [{"phone": "+14155552671"}] * 5001
    response = client_for(bob).post("/api/v1/recipients/bulk", {"recipients": rows}, format="json")
    assert response.status_code == 400
    assert "recipients" in response.json()["errors"]


# --- messages ---------------------------------------------------------------------------------


def test_messages_filter_and_cursor_pages(bob, dave, alice, client_for, make_campaign, make_recipients):
    campaign = make_campaign(bob)
    other = make_campaign(dave)
    people = make_recipients(5)
    for p in people:
        Message.objects.create(campaign=campaign, recipient=p, to=p.phone, status="delivered" if p.pk % 2 else "failed")
    Message.objects.create(campaign=other, recipient=people[0], to=people[0].phone)
    client = client_for(bob)

    seen, url = [], "/api/v1/messages?page_size=2"
    while url:
        page = client.get(url).json()
        assert len(page["results"]) <= 2
        seen += [m["id"] for m in page["results"]]
        url = page["next"]
    assert seen == sorted(Message.objects.filter(campaign=campaign).values_list("pk", flat=True), reverse=True)

    failed = client.get("/api/v1/messages", {"campaign": campaign.pk, "status": "failed"}).json()["results"]
    assert {m["status"] for m in failed} == {"failed"} and failed
    mine = client.get("/api/v1/messages", {"recipient": people[0].pk}).json()["results"]
    assert [m["campaign"] for m in mine] == [campaign.pk]  # dave's message is not bob's to see
    assert len(client_for(alice).get("/api/v1/messages", {"recipient": people[0].pk}).json()["results"]) == 2


# --- inbound ----------------------------------------------------------------------------------


def test_inbound_messages_by_number(bob, dave, carol, make_sender, client_for):
    make_sender(bob, number="+14155550100")
    mine = InboundMessage.objects.create(provider="plivo", sender="+14155552671", to="+14155550100", text="hi")
    InboundMessage.objects.create(provider="plivo", sender="+14155552671", to="+14155550199", text="other")
    assert [m["id"] for m in client_for(bob).get("/api/v1/inbound-messages").json()["results"]] == [mine.pk]
    assert client_for(dave).get(f"/api/v1/inbound-messages/{mine.pk}").status_code == 404
    assert len(client_for(carol).get("/api/v1/inbound-messages").json()["results"]) == 2


# --- senders ----------------------------------------------------------------------------------


def test_senders_own_read_only_admin_writes(alice, bob, dave, make_sender, client_for):
    grant = make_sender(bob, number="+14155550100")
    make_sender(dave, number="+14155550199")
    assert [s["number"] for s in client_for(bob).get("/api/v1/senders").json()["results"]] == ["+14155550100"]
    assert client_for(dave).get(f"/api/v1/senders/{grant.pk}").status_code == 404
    assert client_for(bob).patch(f"/api/v1/senders/{grant.pk}", {"max_mps": 5}, format="json").status_code == 403
    assert (
        client_for(bob).post("/api/v1/senders", {"user": bob.pk, "number": "+14155550101"}, format="json").status_code
        == 403
    )

    admin = client_for(alice)
    assert len(admin.get("/api/v1/senders").json()["results"]) == 2
    created = admin.post(
        "/api/v1/senders", {"user": bob.pk, "number": "415 555 0101", "provider": "flowroute"}, format="json"
    )
    assert created.status_code == 201, created.json()
    assert created.json()["number"] == "+14155550101"
    assert admin.post("/api/v1/senders", {"user": bob.pk, "number": "+14155550101"}, format="json").status_code == 400
    assert admin.patch(f"/api/v1/senders/{grant.pk}", {"max_mps": 5}, format="json").json()["max_mps"] == 5
    assert admin.delete(f"/api/v1/senders/{grant.pk}").status_code == 204
    assert AuthorizedSender.objects.get(pk=grant.pk).is_active is False
