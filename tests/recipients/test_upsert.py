"""The one recipient upsert (recipients/upsert.py): imports, the API and the admin share its rules."""

from __future__ import annotations

import pytest
import redis
from django.conf import settings
from django.core.exceptions import ValidationError

from accounts.models import AuditEvent
from messaging.optouts import KEY
from recipients.models import ConsentEvent, Recipient, RecipientList, Suppression
from recipients.services import (
    import_csv,
    recipient_create,
    recipient_delete,
    recipient_opt_out,
    recipient_update,
    recipients_bulk_upsert,
)
from recipients.upsert import KEPT_OPTED_OUT, ConsentSource, RecipientRow, recipients_upsert

pytestmark = pytest.mark.django_db

STORED = [None, "pending", "opted_in", "opted_out"]
STATED = [None, "opted_in", "opted_out"]
PHONES = [f"+1415555{3000 + i:04d}" for i in range(len(STORED) * len(STATED))]
CASES = [
    (phone, stored, stated)
    for phone, (stored, stated) in zip(PHONES, [(s, t) for s in STORED for t in STATED], strict=True)
]


def _seed():
    for phone, stored, _ in CASES:
        if stored is not None:
            Recipient.objects.create(phone=phone, first_name="Old", consent_status=stored, attributes={"a": "1"})


def _outcome():
    statuses = dict(Recipient.objects.values_list("phone", "consent_status"))
    events = {phone: ConsentEvent.objects.filter(recipient__phone=phone).count() for phone in PHONES}
    names = dict(Recipient.objects.values_list("phone", "first_name"))
    return statuses, events, names


def test_a_csv_import_and_the_api_bulk_upsert_apply_the_same_consent_rules(tmp_path, alice):
    """Every (stored status, stated consent) pair, once through a CSV and once through the API's service."""
    words = {None: "", "opted_in": "yes", "opted_out": "no"}
    lines = ["phone,first_name,consent,consent_evidence,consent_at"] + [
        f"{p},New,{words[stated]},signed form,2024-05-01" for p, _, stated in CASES
    ]
    path = tmp_path / "people.csv"
    path.write_text("\n".join(lines) + "\n")
    _seed()
    job = import_csv(path=path, recipient_list=RecipientList.objects.create(name="csv"), user=alice)
    by_csv = _outcome()
    kept_csv = sorted(job.row_errors.filter(reason=KEPT_OPTED_OUT).values_list("phone", flat=True))

    Recipient.objects.all().delete()
    _seed()
    rows = [RecipientRow(i, p, "New", "", {}, stated, "signed form") for i, (p, _, stated) in enumerate(CASES)]
    result = recipients_bulk_upsert(rows=rows, recipient_list=RecipientList.objects.create(name="api"), actor=alice)
    assert _outcome() == by_csv
    assert sorted(r.phone for r in result.kept_opted_out) == kept_csv

    statuses, events, names = by_csv
    for phone, stored, stated in CASES:
        expected = stated or stored or "pending"
        if stored == "opted_out":
            expected = "opted_out"  # nothing but the person undoes an opt-out
        assert statuses[phone] == expected, (stored, stated)
        assert events[phone] == (expected != (stored or "pending")), (stored, stated)
        assert names[phone] == "New"
    assert kept_csv == [p for p, stored, stated in CASES if (stored, stated) == ("opted_out", "opted_in")]
    assert job.consent_changes == result.consent_changes == sum(events.values())


def test_consent_events_say_who_and_which_row_and_opt_outs_reach_the_send_path(
    alice, django_capture_on_commit_callbacks
):
    Recipient.objects.create(phone="+14155553001", consent_status="opted_in")
    client = redis.Redis.from_url(settings.REDIS_URL)
    with django_capture_on_commit_callbacks(execute=True):
        recipients_upsert(
            [
                RecipientRow(7, "+14155553001", consent="opted_out"),
                RecipientRow(8, "+14155553002", consent="opted_in", evidence="web form"),
            ],
            source=ConsentSource(channel="api", actor_id=alice.pk, evidence="stated somewhere"),
        )
    out = ConsentEvent.objects.get(recipient__phone="+14155553001")
    new = ConsentEvent.objects.get(recipient__phone="+14155553002")
    assert (out.from_status, out.to_status, out.channel, out.actor, out.evidence) == (
        "opted_in",
        "opted_out",
        "api",
        alice,
        "stated somewhere, row 7",
    )
    assert (new.from_status, new.to_status, new.evidence) == (
        "pending",
        "opted_in",
        "stated somewhere, row 8: web form",
    )
    assert client.zscore(KEY, "+14155553001") is not None
    assert client.zscore(KEY, "+14155553002") is None


def test_merge_keeps_what_an_empty_value_would_erase_and_replace_sets_it():
    Recipient.objects.create(phone="+14155553001", first_name="Ann", last_name="Lee", attributes={"a": "1"})
    recipients_upsert([RecipientRow(0, "+14155553001", "", "Li", {"b": "2"})])
    person = Recipient.objects.get()
    assert (person.first_name, person.last_name, person.attributes) == ("Ann", "Li", {"a": "1", "b": "2"})
    recipients_upsert([RecipientRow(0, "+14155553001", "", "Li", {"b": "3"})], replace=True)
    person.refresh_from_db()
    assert (person.first_name, person.last_name, person.attributes) == ("", "Li", {"b": "3"})


def test_the_upsert_refuses_what_callers_must_sort_out():
    with pytest.raises(ValueError, match="same number twice"):
        recipients_upsert([RecipientRow(0, "+14155553001"), RecipientRow(1, "+14155553001")])
    with pytest.raises(ValueError, match="source"):
        recipients_upsert([RecipientRow(0, "+14155553001", consent="opted_in")])
    assert not Recipient.objects.exists()
    assert recipients_upsert([]).rows == []


def test_create_refuses_an_existing_number_and_changes_nothing(bob):
    Recipient.objects.create(phone="+14155553001", first_name="Ann", attributes={"a": "1"})
    with pytest.raises(ValidationError) as refused:
        recipient_create(phone="(415) 555-3001", first_name="Other", attributes={"b": "2"}, actor=bob)
    assert "already exists" in str(refused.value)
    person = Recipient.objects.get()
    assert (person.first_name, person.attributes) == ("Ann", {"a": "1"})
    assert not AuditEvent.objects.filter(action="recipient.create").exists()


def test_create_is_pending_and_update_sets_only_what_is_given(bob):
    vip, other = RecipientList.objects.create(name="vip"), RecipientList.objects.create(name="other")
    person = recipient_create(phone="415 555 3001", first_name="Ann", attributes={"a": "1"}, lists=[vip], actor=bob)
    assert (person.phone, person.consent_status, list(person.lists.all())) == ("+14155553001", "pending", [vip])
    recipient_update(recipient=person, last_name="Lee", lists=[other], actor=bob)
    assert (person.first_name, person.last_name, person.attributes) == ("Ann", "Lee", {"a": "1"})
    assert list(person.lists.all()) == [other]
    recipient_update(recipient=person, phone="+1 (415) 555-3001", attributes={}, actor=bob)  # same number
    assert person.attributes == {}
    with pytest.raises(ValidationError, match="cannot be changed"):
        recipient_update(recipient=person, phone="+14155553002", actor=bob)
    assert [e.action for e in AuditEvent.objects.order_by("pk")] == [
        "recipient.create",
        "recipient.update",
        "recipient.update",
    ]
    assert AuditEvent.objects.order_by("pk").last().detail == "attributes"


def test_deleting_an_opted_out_person_keeps_the_opt_out_on_the_suppression_list(bob):
    person = recipient_create(phone="+14155553001", actor=bob)
    recipient_opt_out(recipient=person, channel="web", evidence="asked by phone", actor=bob)
    recipient_delete(recipient=person, actor=bob)
    assert not Recipient.objects.exists()
    suppression = Suppression.objects.of("+14155553001").get()
    assert "asked by phone" in suppression.evidence
    entry = AuditEvent.objects.get(action="recipient.delete", target_id=str(person.pk))
    # The consent history is deleted with the record, and the audit entry says how much there was.
    assert "suppression list" in entry.detail and "1 consent event(s) deleted" in entry.detail
    again = recipient_create(phone="+14155553001", actor=bob)
    assert again.consent_status == "opted_out"
    event = ConsentEvent.objects.get(recipient=again)
    assert (event.from_status, event.to_status, event.channel) == ("pending", "opted_out", "api")
    assert "suppression list" in event.evidence and "asked by phone" in event.evidence
    assert not Suppression.objects.exists()  # the recipient carries the opt-out again
    # An opted-in person leaves nothing behind.
    Recipient.objects.filter(pk=again.pk).update(consent_status="opted_in")
    recipient_delete(recipient=again, actor=bob)
    assert not Suppression.objects.exists()


def test_new_existing_and_member_recipients_each_join_the_list_once():
    customers = RecipientList.objects.create(name="customers")
    member = Recipient.objects.create(phone="+14155550101")
    customers.members.add(member)
    Recipient.objects.create(phone="+14155550102")  # exists, not in the list
    rows = [RecipientRow(n, f"+141555501{n:02d}") for n in (1, 2, 3)]  # 3: new

    for _ in range(2):
        result = recipients_upsert(rows, recipient_list_id=customers.pk)

    assert result.created == 0 and result.updated == 3
    members = sorted(customers.memberships.values_list("recipient__phone", flat=True))
    assert members == ["+14155550101", "+14155550102", "+14155550103"]
