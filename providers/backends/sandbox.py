"""Accepts every send, then reports simulated delivery through the real status path.

So a newcomer sees messages go queued -> sent -> delivered with no provider
account. Destinations ending in ``666`` come back undelivered, to show failures.
The reports are fed to :func:`providers.events.record_status_events`, the same
function the provider webhooks use.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from providers.backends.base import BaseBackend, OutboundSMS, SendOutcome
from providers.tasks import schedule_sandbox_report


class SMSBackend(BaseBackend):
    provider = "sandbox"

    async def send_one(self, message: OutboundSMS) -> SendOutcome:
        return SendOutcome(ref=message.ref, provider=self.provider, provider_message_id=f"sandbox-{uuid.uuid4()}")

    def after_sent(self, messages: Sequence[OutboundSMS], outcomes: Sequence[SendOutcome]) -> None:
        accepted = [
            (o.ref, o.provider_message_id, m.to.endswith("666"))
            for m, o in zip(messages, outcomes, strict=True)
            if o.accepted
        ]
        if accepted:
            schedule_sandbox_report(accepted)
