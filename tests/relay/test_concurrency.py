"""Concurrent creation on real PostgreSQL: threads with their own connections never double-assign."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from relay import services
from relay.models import Conversation, ConversationLeg
from tests.relay.conftest import A


def _race(n: int, target) -> tuple[list, list]:
    barrier = threading.Barrier(n)
    created, refused = [], []

    def run(i: int) -> None:
        try:
            barrier.wait()
            created.append(target(i))
        except services.RelayError as exc:
            refused.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return created, refused


@pytest.mark.django_db(transaction=True)
def test_concurrent_creation_for_one_person_never_shares_a_virtual_number(make_relay_numbers):
    make_relay_numbers(4)
    created, refused = _race(
        8, lambda i: services.conversation_create(participant_a=A, participant_b=f"+1415201{i:04d}").pk
    )
    assert len(created) == 4 and len(refused) == 4
    assert all(isinstance(e, services.PoolExhausted) for e in refused)
    numbers = list(ConversationLeg.objects.filter(real_number=A, is_open=True).values_list("virtual_number", flat=True))
    assert len(numbers) == len(set(numbers)) == 4
    assert Conversation.objects.count() == 4


@pytest.mark.django_db(transaction=True)
def test_concurrent_creation_for_different_people_all_succeed(make_relay_numbers):
    make_relay_numbers(1)
    created, refused = _race(
        6,
        lambda i: services.conversation_create(participant_a=f"+1415202{i:04d}", participant_b=f"+1415203{i:04d}").pk,
    )
    assert len(created) == 6 and refused == []
