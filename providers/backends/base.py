"""The backend interface every provider implements.

A backend turns :class:`OutboundSMS` into one provider request and classifies
the answer into a :class:`SendOutcome`: accepted (with the provider's id) or an
error from :mod:`providers.errors`. Backends never raise for a single message;
the engine decides what an error means for the message and the campaign.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from django.conf import settings

from providers import runtime
from providers.errors import ProviderError, TransientError

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class OutboundSMS:
    ref: str  # our own message id; callback URLs carry it
    to: str  # E.164
    sender: str  # E.164
    body: str
    media_urls: tuple[str, ...] = ()
    provider: str = ""  # the sender number's provider: "plivo", "flowroute"

    @property
    def is_mms(self) -> bool:
        return bool(self.media_urls)


@dataclass(slots=True)
class SendOutcome:
    ref: str
    provider: str
    provider_message_id: str = ""
    error: ProviderError | None = None
    skipped: bool = False  # a guard stopped it before any request was made

    @property
    def accepted(self) -> bool:
        return self.error is None and not self.skipped


# A guard runs just before each request; returning False skips the message.
Guard = Callable[[OutboundSMS], Awaitable[bool]]


class BaseBackend:
    """Subclasses implement :meth:`send_one`; :meth:`send_messages` adds concurrency."""

    provider = "base"

    async def send_one(self, message: OutboundSMS) -> SendOutcome:
        raise NotImplementedError

    async def _guarded(self, message: OutboundSMS, guard: Guard | None, slots: asyncio.Semaphore) -> SendOutcome:
        async with slots:
            try:
                if guard is not None and not await guard(message):
                    return SendOutcome(ref=message.ref, provider=self.provider, skipped=True)
            except Exception:  # a broken guard must not abort the batch: skip, the row is released
                logger.exception("send guard failed for message %s", message.ref)
                return SendOutcome(ref=message.ref, provider=self.provider, skipped=True)
            try:
                return await self.send_one(message)
            except ProviderError as exc:
                return SendOutcome(ref=message.ref, provider=self.provider, error=exc)
            except Exception as exc:  # a bug must not lose the other results of the batch
                return SendOutcome(
                    ref=message.ref,
                    provider=self.provider,
                    error=TransientError(f"unexpected error: {exc!r}"),
                )

    async def send_many(
        self,
        messages: Sequence[OutboundSMS],
        *,
        guard: Guard | None = None,
        max_in_flight: int | None = None,
    ) -> list[SendOutcome]:
        slots = asyncio.Semaphore(max_in_flight or settings.SMS_MAX_IN_FLIGHT)
        return list(await asyncio.gather(*(self._guarded(m, guard, slots) for m in messages)))

    def send_messages(self, messages: Sequence[OutboundSMS], *, guard: Guard | None = None) -> list[SendOutcome]:
        """Send from sync code, on the process's sender loop. Results keep input order."""
        return runtime.run(self.send_many(messages, guard=guard))
