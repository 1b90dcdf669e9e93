"""Consent integrity: only the person undoes their STOP, and every path obeys the same rules.

Each forbidden way of moving an opted-out person back to ``opted_in`` is tried and must change
nothing (status, ConsentEvents); the allowed ones (their own START/YES from their number, an
admin's override with a reason) work and are recorded. Rules: docs/recipients.md.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from rest_framework.test import APIClient

from accounts.models import AuditEvent
from providers.status import InboundSMS
from recipients.models import ConsentEvent, Recipient, Suppression
from recipients.services import (
    ConsentRevoked,
    RecipientConflict,
    import_csv,
    inbound_handle,
    recipient_consent_override,
    recipient_request_confirmation,
    recipient_set_consent,
)
from relay.models import RelayNumber

pytestmark = pytest.mark.django_db
OUT = "+14155552671"  # the person who texted STOP
OTHER = "+14155552672"  # someone else
OUR_NUMBER = "+14155550100"
EVIDENCE = {"source": "signup form", "collected_at": "2024-05-01T10:00:00Z", "text": "Yes, text me"}


@pytest.fixture
def out(db):
    person = Recipient.objects.create(phone=OUT, first_name="Out")
    inbound_handle(inbound=InboundSMS(provider="plivo", sender=OUT, to=OUR_NUMBER, text="STOP"))
    person.refresh_from_db()
    assert person.consent_status == "opted_out"
    return person


def _api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def _text(sender: str, body: str, to: str = OUR_NUMBER) -> None:
    inbound_handle(inbound=InboundSMS(provider="plivo", sender=sender, to=to, text=body))


# --- Forbidden: each returns nothing; the test checks nothing changed -------------------------


def api_opt_in_empty(w):
    response = _api(w["bob"]).post(f"/api/v1/recipients/{w['out'].pk}/opt-in", {}, format="json")
    assert response.status_code == 409 and response.json()["code"] == "consent_revoked", response.json()


def api_opt_in_with_evidence_by_admin(w):
    response = _api(w["alice"]).post(
        f"/api/v1/recipients/{w['out'].pk}/opt-in", {"evidence": "they called us"}, format="json"
    )
    assert response.status_code == 409 and response.json()["code"] == "consent_revoked"


def api_bulk(w):
    row = {"phone": OUT, "consent": "opted_in", "evidence": EVIDENCE}
    body = _api(w["bob"]).post("/api/v1/recipients/bulk", {"recipients": [row]}, format="json").json()
    assert body["warnings"][0]["errors"]["consent"][0].startswith("kept opted out")


def api_patch(w):
    client = _api(w["bob"])
    response = client.patch(f"/api/v1/recipients/{w['out'].pk}", {"consent_status": "opted_in"}, format="json")
    assert response.status_code == 200 and response.json()["consent_status"] == "opted_out"
    response = client.patch(f"/api/v1/recipients/{w['out'].pk}", {"phone": OTHER}, format="json")
    assert response.status_code == 400


def api_create_same_number(w):
    response = _api(w["bob"]).post("/api/v1/recipients", {"phone": OUT, "consent_status": "opted_in"}, format="json")
    assert response.status_code == 400


def web_override_by_sender(w, client):
    client.force_login(w["bob"])
    response = client.post(f"/recipients/{w['out'].pk}/consent-override/", {"reason": "they asked"})
    assert response.status_code == 403


def web_override_without_reason(w, client):
    client.force_login(w["alice"])
    response = client.post(f"/recipients/{w['out'].pk}/consent-override/", {"reason": "  "}, follow=True)
    assert "needs a written reason" in response.content.decode()


def web_double_opt_in_request(w, client):
    with pytest.raises(ValidationError):
        recipient_request_confirmation(recipient=w["out"], sender_number=OUR_NUMBER, provider="plivo")


def admin_change_form(w, client):
    client.force_login(w["root"])
    url = f"/admin/recipients/recipient/{w['out'].pk}/change/"
    form = {
        "phone": OTHER,
        "first_name": "Out",
        "last_name": "",
        "attributes": "{}",
        "consent_status": "opted_in",
        "memberships-TOTAL_FORMS": "0",
        "memberships-INITIAL_FORMS": "0",
        "consent_events-TOTAL_FORMS": "0",
        "consent_events-INITIAL_FORMS": "0",
    }
    response = client.post(url, form)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert Recipient.objects.get(pk=w["out"].pk).phone == OUT  # the number is read-only


def admin_override_action_without_reason(w, client):
    client.force_login(w["root"])
    response = client.post(
        "/admin/recipients/recipient/",
        {"action": "consent_override", "_selected_action": [w["out"].pk], "reason": ""},
        follow=True,
    )
    assert "Type the reason" in response.content.decode()


def admin_override_action_by_staff_sender(w, client):
    from django.contrib.auth.models import Permission

    staff = w["make_user"]("staffer", role="sender", is_staff=True)  # may use the admin, is no portal admin
    staff.user_permissions.set(Permission.objects.filter(codename__in=["view_recipient", "change_recipient"]))
    client.force_login(staff)
    assert client.get("/admin/recipients/recipient/").status_code == 200
    response = client.post(
        "/admin/recipients/recipient/",
        {"action": "consent_override", "_selected_action": [w["out"].pk], "reason": "because"},
        follow=True,
    )
    assert "overridden" not in response.content.decode()  # the action is not even offered to them


def csv_import(w, tmp_path):
    path = tmp_path / "people.csv"
    path.write_text(f"phone,consent,consent_evidence,consent_at\n{OUT},yes,paper form,2024-05-01\n")
    job = import_csv(path=path, recipient_list=None, user=w["bob"])
    assert job.row_errors.get().reason.startswith("kept opted out")


def relay_start(w):
    relay = RelayNumber.objects.create(number="+14155559000", provider="plivo", label="relay")
    _text(OUT, "START", to=relay.number)  # consumed by the relay: never a consent change


def inbound_start_from_another_number(w):
    _text(OTHER, "START")
    assert Recipient.objects.get(phone=OTHER).consent_status == "opted_in"  # the other number's own consent


def service_sms_without_the_number(w):
    for sender in ("", OTHER):
        with pytest.raises(ConsentRevoked):
            recipient_set_consent(
                recipient=w["out"], status="opted_in", channel="sms", evidence="START", from_number=sender
            )
    with pytest.raises(ConsentRevoked):  # the right number, but not a text from it
        recipient_set_consent(recipient=w["out"], status="opted_in", channel="web", evidence="x", from_number=OUT)


def service_override_by_sender_or_without_reason(w):
    with pytest.raises(PermissionDenied):
        recipient_consent_override(recipient=w["out"], actor=w["bob"], reason="they asked")
    with pytest.raises(ValidationError):
        recipient_consent_override(recipient=w["out"], actor=w["alice"], reason=" ")


FORBIDDEN: list[Callable] = [
    api_opt_in_empty,
    api_opt_in_with_evidence_by_admin,
    api_bulk,
    api_patch,
    api_create_same_number,
    web_override_by_sender,
    web_override_without_reason,
    web_double_opt_in_request,
    admin_change_form,
    admin_override_action_without_reason,
    admin_override_action_by_staff_sender,
    csv_import,
    relay_start,
    inbound_start_from_another_number,
    service_sms_without_the_number,
    service_override_by_sender_or_without_reason,
]


@pytest.fixture
def world(out, alice, bob, make_user):
    root = make_user("root", role="admin", is_staff=True, is_superuser=True)
    return {"out": out, "alice": alice, "bob": bob, "root": root, "make_user": make_user}


@pytest.mark.parametrize("attempt", FORBIDDEN, ids=lambda f: f.__name__)
def test_a_forbidden_opt_in_is_refused_and_changes_nothing(attempt, world, client, tmp_path):
    before = list(ConsentEvent.objects.filter(recipient=world["out"]).values_list("pk", flat=True))
    args = {"client": client, "tmp_path": tmp_path}
    names = attempt.__code__.co_varnames[1 : attempt.__code__.co_argcount]
    attempt(world, **{n: args[n] for n in names})
    person = Recipient.objects.get(pk=world["out"].pk)
    assert (person.phone, person.consent_status) == (OUT, "opted_out")
    assert list(ConsentEvent.objects.filter(recipient=person).values_list("pk", flat=True)) == before
    assert not AuditEvent.objects.filter(action="consent.override").exists()


# --- Allowed ----------------------------------------------------------------------------------


@pytest.mark.parametrize("word", ["START", "unstop", "Yes."])
def test_their_own_start_from_the_same_number_opts_them_back_in(out, word):
    _text(OUT, word)
    out.refresh_from_db()
    assert out.consent_status == "opted_in"
    event = ConsentEvent.objects.filter(recipient=out).first()
    assert (event.from_status, event.to_status, event.channel) == ("opted_out", "opted_in", "sms")
    assert f"{word!r}" in event.evidence


def test_double_opt_in_yes_opts_a_pending_person_in():
    person = Recipient.objects.create(phone=OTHER)
    recipient_request_confirmation(recipient=person, sender_number=OUR_NUMBER, provider="plivo")
    _text(OTHER, "YES")
    person.refresh_from_db()
    assert person.consent_status == "opted_in"
    assert ConsentEvent.objects.get(recipient=person).channel == "sms"


def test_an_admin_override_with_a_reason_is_recorded_audited_and_shown(out, alice, client):
    assert recipient_consent_override(recipient=out, actor=alice, reason="  Signed consent form on file #12  ")
    out.refresh_from_db()
    assert out.consent_status == "opted_in"
    event = ConsentEvent.objects.filter(recipient=out).first()
    assert (event.to_status, event.channel, event.actor, event.actor_description, event.evidence) == (
        "opted_in",
        "admin",
        alice,
        "admin override",
        "Signed consent form on file #12",
    )
    audit = AuditEvent.objects.get(action="consent.override")
    assert "Signed consent form on file #12" in audit.detail
    client.force_login(alice)
    page = client.get(f"/recipients/{out.pk}/").content.decode()
    assert "Admin overrides of an opt-out" in page and "Signed consent form on file #12" in page
    with pytest.raises(RecipientConflict):  # only an opt-out can be overridden
        recipient_consent_override(recipient=out, actor=alice, reason="again")


def test_the_web_override_and_the_admin_action_work_for_admins(out, alice, make_user, client):
    client.force_login(alice)
    client.post(f"/recipients/{out.pk}/consent-override/", {"reason": "court order"})
    out.refresh_from_db()
    assert out.consent_status == "opted_in"
    _text(OUT, "STOP")
    root = make_user("root", role="admin", is_staff=True, is_superuser=True)
    client.force_login(root)
    response = client.post(
        "/admin/recipients/recipient/",
        {"action": "consent_override", "_selected_action": [out.pk], "reason": "paper form"},
        follow=True,
    )
    assert "1 opt-out(s) overridden" in response.content.decode()
    out.refresh_from_db()
    assert out.consent_status == "opted_in"


# --- Suppression ------------------------------------------------------------------------------


def test_a_deleted_opted_out_number_comes_back_opted_out_from_an_import(out, bob, tmp_path):
    out.delete()  # not through the service: nothing remembers the opt-out...
    assert not Suppression.objects.exists()
    person = Recipient.objects.create(phone=OUT)
    _text(OUT, "STOP")
    from recipients.services import recipient_delete

    recipient_delete(recipient=Recipient.objects.get(phone=OUT), actor=bob)  # ...the service does
    assert Suppression.objects.of(OUT).exists() and not Recipient.objects.exists()
    path = tmp_path / "again.csv"
    path.write_text(f"phone,first_name,consent,consent_evidence,consent_at\n{OUT},Back,yes,web form,2024-06-01\n")
    job = import_csv(path=path, recipient_list=None, user=bob)
    person = Recipient.objects.get(phone=OUT)
    assert (person.consent_status, person.first_name) == ("opted_out", "Back")
    event = ConsentEvent.objects.get(recipient=person)
    assert (event.from_status, event.to_status, event.channel) == ("pending", "opted_out", "import")
    assert "suppression list" in event.evidence
    assert job.row_errors.get().reason.startswith("kept opted out")
    assert not Suppression.objects.exists()


def test_the_admin_delete_goes_through_the_service(out, make_user, client):
    root = make_user("root", role="admin", is_staff=True, is_superuser=True)
    client.force_login(root)
    response = client.post(f"/admin/recipients/recipient/{out.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert Suppression.objects.of(OUT).exists()
    assert AuditEvent.objects.filter(action="recipient.delete").exists()
    _text(OUT, "hello")  # not a keyword: no recipient created
    _text(OUT, "START")  # their own START: back as a recipient, opted in
    person = Recipient.objects.get(phone=OUT)
    assert person.consent_status == "opted_in"
    assert [e.to_status for e in ConsentEvent.objects.filter(recipient=person).order_by("id")] == [
        "opted_out",
        "opted_in",
    ]
