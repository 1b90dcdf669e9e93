"""Django admin: search by number and name, filters, bulk opt-out through the service, add to list."""

from __future__ import annotations

import pytest
from django.urls import reverse

from recipients.models import ConsentEvent, Membership, RecipientList

pytestmark = pytest.mark.django_db
CHANGELIST = "/admin/recipients/recipient/"


@pytest.fixture
def admin_client(client, make_user):
    root = make_user("root", role="admin", is_staff=True, is_superuser=True)
    client.force_login(root)
    return client, root


def test_search_by_number_in_any_format_and_by_name(admin_client, make_recipients):
    client, _ = admin_client
    people = make_recipients(3)
    target = people[1]
    national = f"({target.phone[2:5]}) {target.phone[5:8]}-{target.phone[8:]}"
    found = client.get(CHANGELIST, {"q": national}).context["cl"].result_list
    assert list(found) == [target]
    found = client.get(CHANGELIST, {"q": target.first_name}).context["cl"].result_list
    assert list(found) == [target]


def test_filters_by_consent_status_and_list(admin_client, make_recipients):
    client, _ = admin_client
    make_recipients(2, recipient_list="a")
    out = make_recipients(1, recipient_list="b", consent="opted_out")
    assert list(client.get(CHANGELIST, {"consent_status__exact": "opted_out"}).context["cl"].result_list) == out
    b = RecipientList.objects.get(name="b")
    assert list(client.get(CHANGELIST, {"lists__id__exact": b.pk}).context["cl"].result_list) == out


def test_bulk_opt_out_writes_a_consent_event_each(admin_client, make_recipients):
    client, root = admin_client
    people = make_recipients(3)
    already = make_recipients(1, consent="opted_out")
    ids = [p.pk for p in people[:2]] + [already[0].pk]
    response = client.post(CHANGELIST, {"action": "opt_out", "_selected_action": ids}, follow=True)
    assert "2 recipient(s) opted out" in response.content.decode()
    events = ConsentEvent.objects.all()
    assert sorted(e.recipient_id for e in events) == sorted(p.pk for p in people[:2])
    assert all(e.channel == "admin" and e.actor == root and e.to_status == "opted_out" for e in events)
    people[2].refresh_from_db()
    assert people[2].consent_status == "opted_in"


def test_bulk_add_to_list(admin_client, make_recipients):
    client, _ = admin_client
    people = make_recipients(3, recipient_list="a")
    vip = RecipientList.objects.create(name="vip")
    ids = [p.pk for p in people[:2]]
    response = client.post(
        CHANGELIST, {"action": "add_to_list", "_selected_action": ids, "recipient_list": vip.pk}, follow=True
    )
    assert "2 recipient(s) added to vip" in response.content.decode()
    assert sorted(vip.members.values_list("pk", flat=True)) == ids
    again = client.post(
        CHANGELIST, {"action": "add_to_list", "_selected_action": ids, "recipient_list": vip.pk}, follow=True
    )
    assert "0 recipient(s) added" in again.content.decode()
    missing = client.post(CHANGELIST, {"action": "add_to_list", "_selected_action": ids}, follow=True)
    assert "Choose a list" in missing.content.decode()


def test_consent_history_is_read_only_inline(admin_client, make_recipients):
    client, _ = admin_client
    (person,) = make_recipients(1)
    from recipients.services import recipient_opt_out

    recipient_opt_out(recipient=person, channel="web", evidence="on the phone")
    page = client.get(reverse("admin:recipients_recipient_change", args=[person.pk]))
    assert page.status_code == 200
    body = page.content.decode()
    assert "on the phone" in body and 'name="consent_events-0-evidence"' not in body


def test_import_jobs_are_visible_read_only(admin_client, tmp_path):
    client, _ = admin_client
    from recipients.models import ImportJob, ImportRowError

    job = ImportJob.objects.create(file="/x", original_name="a.csv", status="completed")
    ImportRowError.objects.create(job=job, row_number=3, phone="nope", reason="not a phone number")
    page = client.get(reverse("admin:recipients_importjob_change", args=[job.pk]))
    assert page.status_code == 200 and "not a phone number" in page.content.decode()
    assert client.get(reverse("admin:recipients_importjob_add")).status_code == 403


def test_viewers_without_staff_cannot_use_the_admin(client, carol):
    client.force_login(carol)
    assert client.get(CHANGELIST).status_code == 302


def _inline_management(data: dict) -> dict:
    for prefix in ("memberships", "consent_events"):
        data.update({f"{prefix}-TOTAL_FORMS": "0", f"{prefix}-INITIAL_FORMS": "0", f"{prefix}-MAX_NUM_FORMS": "1000"})
    return data


def test_add_and_change_go_through_the_recipients_upsert(admin_client):
    from accounts.models import AuditEvent
    from recipients.models import Recipient

    client, root = admin_client
    response = client.post(
        reverse("admin:recipients_recipient_add"),
        _inline_management({"phone": "+14155552671", "first_name": "Ann", "last_name": "", "attributes": '{"a": "1"}'}),
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    person = Recipient.objects.get()
    assert (person.first_name, person.attributes, person.consent_status) == ("Ann", {"a": "1"}, "pending")
    change = reverse("admin:recipients_recipient_change", args=[person.pk])
    assert 'name="phone"' not in client.get(change).content.decode()  # consent belongs to the number
    data = _inline_management({"first_name": "Ann", "last_name": "Lee", "attributes": '{"b": "2"}'})
    assert client.post(change, data).status_code == 302
    person.refresh_from_db()
    assert (person.phone, person.last_name, person.attributes) == ("+14155552671", "Lee", {"b": "2"})
    assert [(e.action, e.actor) for e in AuditEvent.objects.filter(action__startswith="recipient.").order_by("pk")] == [
        ("recipient.create", root),
        ("recipient.update", root),
    ]


def _change_form_data(response) -> dict:
    """What the recipient's change form would post as it stands (fields and every inline's management form)."""
    data: dict = {}
    form = response.context["adminform"].form
    for name, field in form.fields.items():
        value = form.initial.get(name, field.initial)
        if value is not None:
            data[name] = form[name].value()
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        for key, value in formset.management_form.initial.items():
            data[f"{formset.prefix}-{key}"] = value
        for index, sub in enumerate(formset.initial_forms):
            data[f"{formset.prefix}-{index}-id"] = sub.instance.pk
            data[f"{formset.prefix}-{index}-recipient"] = response.context["original"].pk
    return {k: v for k, v in data.items() if v is not None}


def test_list_membership_inline_adds_and_removes_through_the_list_services(admin_client, make_recipients):
    """The inline once wrote memberships itself; now the services do, so the rule lives in one place."""
    client, _ = admin_client
    (person,) = make_recipients(1, recipient_list="a")
    vip = RecipientList.objects.create(name="vip")
    url = reverse("admin:recipients_recipient_change", args=[person.pk])
    page = client.get(url)
    data = _change_form_data(page)
    prefix = next(i.formset.prefix for i in page.context["inline_admin_formsets"] if i.formset.model is Membership)
    data[f"{prefix}-TOTAL_FORMS"] = 2
    data[f"{prefix}-0-DELETE"] = "on"
    data[f"{prefix}-1-recipient_list"] = vip.pk
    data[f"{prefix}-1-recipient"] = person.pk
    response = client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else response
    assert list(person.lists.values_list("name", flat=True)) == ["vip"]


def test_membership_admin_adds_and_removes_through_the_list_services(admin_client, make_recipients):
    client, _ = admin_client
    (person,) = make_recipients(1)
    vip = RecipientList.objects.create(name="vip")
    add = client.post(reverse("admin:recipients_membership_add"), {"recipient_list": vip.pk, "recipient": person.pk})
    assert add.status_code == 302
    membership = Membership.objects.get(recipient_list=vip, recipient=person)
    again = client.post(reverse("admin:recipients_membership_add"), {"recipient_list": vip.pk, "recipient": person.pk})
    assert again.status_code == 200 and "already exists" in again.content.decode()
    change = client.post(
        reverse("admin:recipients_membership_change", args=[membership.pk]),
        {"recipient_list": RecipientList.objects.create(name="other").pk, "recipient": person.pk},
    )
    assert change.status_code == 403
    client.post(reverse("admin:recipients_membership_delete", args=[membership.pk]), {"post": "yes"})
    assert not Membership.objects.filter(pk=membership.pk).exists()
