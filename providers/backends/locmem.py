"""Keeps sent messages in ``providers.backends.locmem.outbox``, like Django's mail.outbox.

Only useful in one process (tests that send eagerly). ``fail_numbers`` lets a
test make a destination fail with a given error.
"""

from __future__ import annotations

import itertools

from providers.backends.base import BaseBackend, OutboundSMS, SendOutcome
from providers.errors import ProviderError

outbox: list[OutboundSMS] = []
fail_numbers: dict[str, ProviderError] = {}
_ids = itertools.count(1)


def reset() -> None:
    outbox.clear()
    fail_numbers.clear()


class SMSBackend(BaseBackend):
    provider = "locmem"

    async def send_one(self, message: OutboundSMS) -> SendOutcome:
        if message.to in fail_numbers:
            return SendOutcome(ref=message.ref, provider=self.provider, error=fail_numbers[message.to])
        outbox.append(message)
        return SendOutcome(ref=message.ref, provider=self.provider, provider_message_id=f"locmem-{next(_ids)}")
