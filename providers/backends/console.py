"""Prints each message to stdout and accepts it. For local experiments."""

from __future__ import annotations

import sys
import uuid

from providers.backends.base import BaseBackend, OutboundSMS, SendOutcome


class SMSBackend(BaseBackend):
    provider = "console"

    async def send_one(self, message: OutboundSMS) -> SendOutcome:
        media = f" media={list(message.media_urls)}" if message.media_urls else ""
        sys.stdout.write(f"SMS {message.sender} -> {message.to}{media}\n{message.body}\n{'-' * 40}\n")
        sys.stdout.flush()
        return SendOutcome(ref=message.ref, provider=self.provider, provider_message_id=f"console-{uuid.uuid4()}")
