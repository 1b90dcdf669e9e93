"""A sender grant revoked (or its holder withdrawn) while a campaign sends stops that number at the
next chunk, as a pause does, not at the next claim: a paced batch runs for minutes."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection

from accounts.services import sender_deactivate, sender_update, user_set_access
from campaigns.models import Campaign, CampaignEvent
from campaigns.sending import NO_SENDER_LEFT
from campaigns.services import campaign_resume
from messaging.engine import send_batch
from messaging.models import Message
from providers.backends import locmem

pytestmark = pytest.mark.django_db(transaction=True)


def _campaign_rows(bob, make_recipients, make_campaign, senders, n: int) -> list[int]:
    people = make_recipients(n, recipient_list="everyone")
    campaign = make_campaign(bob, lists=["everyone"], senders=senders, status=Campaign.Status.SENDING)
    return [Message.objects.create(campaign=campaign, recipient=p, to=p.phone, body="hi").pk for p in people]


def _soon(action) -> threading.Thread:
    def run() -> None:
        time.sleep(0.6)
        try:
            action()
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def _sent_from() -> list[str]:
    return [m.sender for m in locmem.outbox]


def test_a_grant_revoked_mid_batch_sends_nothing_more_from_its_number(
    alice, bob, make_sender, make_recipients, make_campaign
):
    grant = make_sender(bob, number="+14155550100", max_mps=10)  # paced: ~2 s for 20 sends, in small chunks
    ids = _campaign_rows(bob, make_recipients, make_campaign, [grant], 20)

    thread = _soon(lambda: sender_deactivate(actor=alice, sender=grant))
    result = send_batch(message_ids=ids)
    thread.join()

    sent = len(locmem.outbox)
    # What left before the revocation, and the chunk already under way, went; the rest did not.
    assert 0 < sent <= 15 and result.released == 20 - sent
    # Claimed again, the campaign has no number left: it pauses (only a person resumes it) and the
    # rest wait, never sent from the revoked number and never skipped.
    send_batch(message_ids=ids)
    assert len(locmem.outbox) == sent
    _assert_paused_for_want_of_a_number(ids, 20 - sent)

    # A number granted again and a person's resume send the rest, each once.
    sender_update(actor=alice, sender=grant, is_active=True)
    campaign = Campaign.objects.get(pk=Message.objects.get(pk=ids[0]).campaign_id)
    campaign_resume(campaign=campaign, user=bob)
    send_batch(message_ids=ids)
    assert len(locmem.outbox) == 20 and len({m.to for m in locmem.outbox}) == 20


def _assert_paused_for_want_of_a_number(ids: list[int], waiting: int) -> None:
    campaign = Campaign.objects.get(pk=Message.objects.get(pk=ids[0]).campaign_id)
    assert (campaign.status, campaign.auto_paused, campaign.pause_reason) == (
        Campaign.Status.PAUSED,
        False,  # beat's probe would find no number either: a person resumes it
        NO_SENDER_LEFT,
    )
    assert list(CampaignEvent.objects.filter(campaign=campaign).values_list("kind", flat=True)) == ["sender_pause"]
    statuses = list(Message.objects.filter(pk__in=ids).values_list("status", flat=True))
    assert statuses.count("pending") == waiting and "skipped" not in statuses


def test_rows_of_a_revoked_number_go_out_from_the_rest_of_the_pool(
    alice, bob, make_sender, make_recipients, make_campaign
):
    # 60 people, about half on each number (sticky by recipient): the fast number is done at once,
    # the slow one would take ~3 s for its ~30.
    revoked = make_sender(bob, number="+14155550100", max_mps=10)
    kept = make_sender(bob, number="+14155550101", max_mps=100)
    ids = _campaign_rows(bob, make_recipients, make_campaign, [revoked, kept], 60)

    thread = _soon(lambda: sender_deactivate(actor=alice, sender=revoked))
    send_batch(message_ids=ids)
    thread.join()
    before = _sent_from().count(revoked.number)
    send_batch(message_ids=ids)  # the released rows, claimed again

    assert 0 < before <= 15  # what left before the revocation and the chunk under way
    assert _sent_from().count(revoked.number) == before  # nothing more from it
    assert len(locmem.outbox) == 60 and len({m.to for m in locmem.outbox}) == 60  # everyone, once


def test_a_withdrawn_holders_numbers_stop_too(alice, bob, make_sender, make_recipients, make_campaign):
    grant = make_sender(bob, number="+14155550100", max_mps=10)
    ids = _campaign_rows(bob, make_recipients, make_campaign, [grant], 20)

    thread = _soon(lambda: user_set_access(actor=alice, user=bob, is_approved=True, is_active=False))
    send_batch(message_ids=ids)
    thread.join()
    sent = len(locmem.outbox)
    send_batch(message_ids=ids)

    assert 0 < sent <= 15 and len(locmem.outbox) == sent
    _assert_paused_for_want_of_a_number(ids, 20 - sent)
