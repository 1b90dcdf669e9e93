"""Subject access (recipient_export) and erasure (recipient_erase): everything about a number, audited;
erasure keeps only the opt-out, as a hash."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command

from accounts.models import AuditEvent
from campaigns.models import Campaign
from campaigns.selectors import campaign_stats
from messaging.models import Message, MessageStatus
from providers.models import ProviderEvent
from recipients.models import ConsentEvent, InboundMessage, Recipient, Suppression, suppression_key
from recipients.services import recipient_get_or_create, recipient_set_consent

pytestmark = pytest.mark.django_db
S = MessageStatus


@pytest.fixture
def person(make_recipients, bob, make_campaign):
    (person,) = make_recipients(1, recipient_list="customers")
    Recipient.objects.filter(pk=person.pk).update(first_name="Dana")
    campaign = make_campaign(bob, status=Campaign.Status.SENDING, recipient_total=1)
    sent = Message.objects.create(
        kind=Message.Kind.SINGLE,
        recipient=person,
        to=person.phone,
        body="Hi Dana",
        status=S.DELIVERED,
        cost_micros=6500,
    )
    Message.objects.create(campaign=campaign, recipient=person, to=person.phone, body="Later", status=S.PENDING)
    from campaigns import counters

    counters.add_deltas({(campaign.pk, "waiting"): 1})
    ProviderEvent.objects.create(provider="plivo", kind="status", message_ref=str(sent.pk), payload={"To": "1415"})
    InboundMessage.objects.create(provider="plivo", sender=person.phone, to="+14155550100", text="What is this?")
    person.campaign = campaign
    return person


def export(phone: str) -> dict:
    out = io.StringIO()
    call_command("recipient_export", phone=phone, stdout=out)
    return json.loads(out.getvalue())


def test_the_export_holds_everything_about_the_number_and_is_audited(person):
    data = export(person.phone)

    assert data["recipient"]["first_name"] == "Dana" and data["recipient"]["lists"] == ["customers"]
    assert {m["body"] for m in data["outbound_messages"]} == {"Hi Dana", "Later"}
    assert [m["text"] for m in data["inbound_messages"]] == ["What is this?"]
    assert len(data["provider_events"]) == 1 and data["suppressed"] is False
    assert AuditEvent.objects.filter(action="subject.export").count() == 1
    # Another notation of the same number finds the same person.
    national = f"({person.phone[2:5]}) {person.phone[5:8]}-{person.phone[8:]}"
    assert export(national)["recipient"]["first_name"] == "Dana"


def test_an_unknown_number_exports_empty_and_a_malformed_one_is_refused():
    assert export("+14155559999")["recipient"] is None
    with pytest.raises(CommandError, match="--phone"):
        call_command("recipient_export", phone="not a number", stdout=io.StringIO())


def test_erasure_needs_confirmation(person):
    with pytest.raises(CommandError, match="--yes"):
        call_command("recipient_erase", phone=person.phone)
    assert Recipient.objects.filter(pk=person.pk).exists()


def test_erasure_removes_everything_but_keeps_the_opt_out_as_a_hash(person):
    recipient_set_consent(recipient=person, status="opted_out", channel="sms", evidence=f"STOP from {person.phone}")
    phone, campaign = person.phone, person.campaign

    call_command("recipient_erase", phone=phone, yes=True, stdout=io.StringIO())

    assert not Recipient.objects.filter(phone=phone).exists()
    assert not Message.objects.filter(to=phone).exists()
    assert not InboundMessage.objects.filter(sender=phone).exists()
    assert not ProviderEvent.objects.exists() and not ConsentEvent.objects.exists()
    suppression = Suppression.objects.get()
    assert suppression.phone_hash == suppression_key(phone)
    assert phone not in suppression.evidence and phone[2:] not in suppression.evidence
    # The campaign's numbers stay right: the waiting message was cancelled before it went.
    stats = campaign_stats(campaign=campaign)
    assert (stats["counts"]["waiting"], stats["counts"]["cancelled"]) == (0, 1)
    audit = AuditEvent.objects.get(action="subject.erase")
    assert phone not in audit.detail and phone not in audit.target_repr
    # The opt-out outlives the erasure: the number comes back opted out.
    again, _ = recipient_get_or_create(phone=phone, channel="import")
    assert again.consent_status == "opted_out"


def test_erasing_someone_who_never_opted_out_keeps_nothing(person):
    call_command("recipient_erase", phone=person.phone, yes=True, stdout=io.StringIO())

    assert not Suppression.objects.exists() and not Recipient.objects.exists()
