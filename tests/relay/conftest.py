"""Relay fixtures: a pool of relay numbers, two participants, and a leak checker."""

from __future__ import annotations

import re

import pytest

A = "+14152000001"  # a driver
B = "+14152000002"  # a rider
C = "+14152000003"


@pytest.fixture
def make_relay_numbers(db):
    from relay.models import RelayNumber

    def make(n: int, *, provider: str = "plivo", start: int = 100) -> list:
        return [
            RelayNumber.objects.create(number=f"+1415555{start + i:04d}", provider=provider, label=f"relay {i}")
            for i in range(n)
        ]

    return make


def _digits(value) -> str:
    return re.sub(r"\D", "", str(value))


def assert_no_leak(payloads, real_numbers=(A, B, C)) -> None:
    """Every payload (to, sender, body, media) carries no real number except its own destination's."""
    payloads = list(payloads)
    assert payloads, "nothing was sent: the leak check would prove nothing"
    for to, sender, body, media in payloads:
        visible = _digits(f"{sender} {body} {' '.join(media)}")
        for real in real_numbers:
            if _digits(real) == _digits(to):
                continue
            national = _digits(real)[-10:]  # also the national form, 4152000001
            assert national not in visible, f"{real} leaked in a message to {to}: {sender!r} {body!r} {media!r}"


def message_payloads():
    from messaging.models import Message

    return [(m.to, m.sender, m.body, m.media_urls) for m in Message.objects.all()]


def outbox_payloads():
    from providers.backends import locmem

    return [(m.to, m.sender, m.body, list(m.media_urls)) for m in locmem.outbox]
