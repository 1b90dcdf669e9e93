"""Property: whatever happens, a number that opted out is never opted in again unless that number's
own START/YES (or an admin's override with a reason) came later.

Random sequences of consent actions from random actors, on the real database (rows reset for
each example): API opt-in/opt-out, API bulk and CSV-style upserts, an admin without the override,
a sender trying the override, inbound START/STOP/YES from the same or another number, deletes.
"""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from messaging.models import Message
from providers.status import InboundSMS
from recipients.models import ConsentEvent, InboundMessage, Recipient, Suppression
from recipients.services import (
    RecipientConflict,
    inbound_handle,
    recipient_consent_override,
    recipient_create,
    recipient_delete,
    recipient_opt_out,
    recipient_set_consent,
    recipients_bulk_upsert,
)
from recipients.upsert import RecipientRow

NUMBERS = ["+14155552671", "+14155552672"]
OUR_NUMBER = "+14155550100"

ACTIONS = st.sampled_from(
    [
        "create",
        "api_opt_in",
        "api_opt_out",
        "bulk_opt_in",
        "bulk_opt_out",
        "admin_set_opt_in",  # an admin, but through the ordinary service: no override
        "sender_override",
        "admin_override",
        "sms_start",
        "sms_yes",
        "sms_stop",
        "delete",
    ]
)
STEP = st.tuples(ACTIONS, st.sampled_from(NUMBERS), st.sampled_from(NUMBERS))  # (action, target, texting from)


def _recipient(phone: str) -> Recipient | None:
    return Recipient.objects.filter(phone=phone).first()


def _apply(action: str, phone: str, sender: str, users: dict) -> set[str]:
    """Do one action; return the numbers it legitimately opted in again (own START/YES, override)."""
    person = _recipient(phone)
    evidence = "signed form, 2024-05-01"
    try:
        if action == "create":
            recipient_create(phone=phone, actor=users["bob"])
        elif action in {"sms_start", "sms_yes", "sms_stop"}:
            word = {"sms_start": "START", "sms_yes": "YES", "sms_stop": "STOP"}[action]
            inbound_handle(inbound=InboundSMS(provider="plivo", sender=sender, to=OUR_NUMBER, text=word))
            return {sender} if word != "STOP" else set()
        elif action in {"bulk_opt_in", "bulk_opt_out"}:
            consent = "opted_in" if action == "bulk_opt_in" else "opted_out"
            row = RecipientRow(0, phone, consent=consent, evidence=evidence)
            recipients_bulk_upsert(rows=[row], recipient_list=None, actor=users["bob"])
        elif person is None:
            return set()
        elif action == "api_opt_in":
            recipient_set_consent(
                recipient=person, status="opted_in", channel="api", actor=users["bob"], evidence=evidence
            )
        elif action == "api_opt_out":
            recipient_opt_out(recipient=person, channel="api", actor=users["bob"], evidence="asked")
        elif action == "admin_set_opt_in":
            recipient_set_consent(
                recipient=person, status="opted_in", channel="admin", actor=users["alice"], evidence=evidence
            )
        elif action == "sender_override":
            recipient_consent_override(recipient=person, actor=users["bob"], reason="they asked")
        elif action == "admin_override":
            recipient_consent_override(recipient=person, actor=users["alice"], reason="signed paper form")
            return {phone}
        elif action == "delete":
            recipient_delete(recipient=person, actor=users["bob"])
    except (RecipientConflict, PermissionDenied, ValidationError):
        pass
    return set()


@pytest.mark.django_db
def test_an_opt_out_is_only_undone_by_the_person_or_an_override(make_user):
    users = {"alice": make_user("alice", role="admin"), "bob": make_user("bob", role="sender")}

    @settings(
        max_examples=40,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(st.lists(STEP, min_size=1, max_size=12))
    def check(steps):
        for model in (Message, InboundMessage, ConsentEvent, Recipient, Suppression):  # the audit log is append-only
            model.objects.all().delete()
        opted_out = dict.fromkeys(NUMBERS, False)  # an opt-out not undone by the person since
        for action, phone, sender in steps:
            before = {p: getattr(_recipient(p), "consent_status", None) for p in NUMBERS}
            undone = _apply(action, phone, sender, users)
            for p in NUMBERS:
                now = getattr(_recipient(p), "consent_status", None)
                if now == "opted_out" or (now is None and Suppression.objects.of(p).exists()):
                    opted_out[p] = True
                if now == "opted_in" and before[p] != "opted_in":
                    if opted_out[p]:
                        assert p in undone, (steps, action, p)
                    opted_out[p] = False
                if opted_out[p]:
                    assert now != "opted_in", (steps, action, p)

    check()
