"""The backend interface every provider implements.

A backend turns :class:`OutboundSMS` into one provider request and classifies
the answer into a :class:`SendOutcome`: accepted (with the provider's id) or an
error from :mod:`providers.errors`. Backends never raise for a single message;
the engine decides what an error means for the message and the campaign.

A provider's backend is a :class:`ProviderBackend`: the send is one fixed
sequence for every provider, and the provider module only fills in its hooks.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import httpx
from django.conf import settings

from providers import registry, runtime
from providers.errors import InvalidRecipient, PermanentError, ProviderError, TransientError
from providers.http_errors import TRANSPORT_ERRORS, error_detail, provider_error

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class OutboundSMS:
    ref: str  # our own message id; callback URLs carry it
    to: str  # E.164
    sender: str  # E.164
    body: str
    media_urls: tuple[str, ...] = ()
    provider: str = ""  # the sender number's provider: a name in providers.registry

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

    async def _guarded(
        self,
        message: OutboundSMS,
        guard: Guard | None,
        slots: asyncio.Semaphore,
        on_started: Callable[[str], None] | None = None,
    ) -> SendOutcome:
        async with slots:
            return await self._guarded_in_slot(message, guard, on_started)

    async def _guarded_in_slot(
        self, message: OutboundSMS, guard: Guard | None, on_started: Callable[[str], None] | None = None
    ) -> SendOutcome:
        """The guard, then the request; the caller holds an in-flight slot."""
        try:
            if guard is not None and not await guard(message):
                return SendOutcome(ref=message.ref, provider=self.provider, skipped=True)
        except Exception:  # a broken guard must not abort the batch: skip, the row is released
            logger.exception("send guard failed for message %s", message.ref)
            return SendOutcome(ref=message.ref, provider=self.provider, skipped=True)
        finally:
            if on_started is not None:
                on_started(message.ref)
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
        outcomes = runtime.run(self.send_many(messages, guard=guard))
        self.after_sent(messages, outcomes)
        return outcomes

    def start_messages(
        self,
        messages: Sequence[OutboundSMS],
        *,
        guard: Guard | None,
        on_started: Callable[[str], None],
        on_done: Callable[[SendOutcome], None],
    ) -> concurrent.futures.Future[None]:
        """Send from sync code without waiting: each outcome is handed to ``on_done`` as it completes.

        ``on_started(ref)`` runs once each message passed (or failed) its guard, just before its
        request; both callbacks run on the sender loop's thread and must be quick and thread-safe.
        The process's requests share one limit of ``SMS_MAX_IN_FLIGHT``, however many are started.
        """

        async def one(message: OutboundSMS, slots: runtime.Slots) -> None:
            try:
                outcome = await self._guarded_in_slot(message, guard, on_started)
            finally:
                slots.release()
            on_done(outcome)

        async def all_of_them() -> None:
            # Only this loop waits for a slot, and a task starts once it holds one: hundreds of
            # tasks waiting on the semaphore made every acquire and release scan them all.
            slots = runtime.slots()
            started = []
            for message in messages:
                await slots.acquire()
                started.append(asyncio.ensure_future(one(message, slots)))
            await asyncio.gather(*started)

        return runtime.submit(all_of_them())

    def after_sent(self, messages: Sequence[OutboundSMS], outcomes: Sequence[SendOutcome]) -> None:
        """Called with outcomes once they are recorded (the sandbox reports its deliveries from here)."""


class ProviderBackend(BaseBackend):
    """The backend of a provider in :mod:`providers.registry`: one HTTP request per message.

    Every provider sends in the same order: its credentials (missing ones are a
    :class:`ConfigurationError`), the registry's capability checks (NANP-only,
    body length, media count: refused before any request), the payload, one
    POST on the shared transport (:func:`providers.runtime.send`), :func:`providers.http_errors.provider_error` on
    the answer, and the provider's message id. A subclass sets ``provider`` and
    fills in the hooks below.
    """

    content_type = "application/json"
    info: registry.ProviderInfo  # the registry entry named ``provider``, set on subclassing

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        cls.info = registry.get(cls.provider)

    # -- hooks ------------------------------------------------------------------

    def credentials(self) -> tuple[str, str]:
        """HTTP Basic user and password; raise :class:`ConfigurationError` when unset."""
        raise NotImplementedError

    def endpoint(self, user: str) -> str:
        """The URL a message is POSTed to."""
        raise NotImplementedError

    def build_payload(self, message: OutboundSMS) -> dict[str, object]:
        """The JSON body for one message; may raise a :class:`PermanentError`."""
        raise NotImplementedError

    def error_detail(self, response: httpx.Response) -> tuple[str, str]:
        """The provider's own ``(code, text)`` from a refusal's body (parsed, never the raw body)."""
        return error_detail(response)

    def message_id(self, response: httpx.Response) -> str:
        """The provider's id of an accepted message ("" when the answer has none)."""
        raise NotImplementedError

    # -- the send -----------------------------------------------------------------

    def check(self, message: OutboundSMS) -> None:
        """Refuse what the registry says this provider cannot send."""
        info = self.info
        if info.nanp_only:
            if not info.can_send_to(message.to):
                raise InvalidRecipient(f"{info.label} sends only to North American (+1) numbers")
            if not info.can_send_to(message.sender):
                raise PermanentError(f"{info.label} sends only from North American (+1) numbers")
        if message.media_urls:
            if not info.mms:
                raise PermanentError(f"{info.label} does not send MMS")
            if info.max_media is not None and len(message.media_urls) > info.max_media:
                raise PermanentError(
                    f"{info.label} accepts at most {info.max_media} media URLs, got {len(message.media_urls)}"
                )
        if info.max_body_chars is not None and len(message.body) > info.max_body_chars:
            raise PermanentError(
                f"{info.label} accepts at most {info.max_body_chars} characters, got {len(message.body)}"
            )

    async def send_one(self, message: OutboundSMS) -> SendOutcome:
        user, password = self.credentials()
        self.check(message)
        payload = self.build_payload(message)
        try:
            request = httpx.Request(
                "POST",
                runtime.url(self.endpoint(user)),
                headers=runtime.auth_headers(user, password, self.content_type),
                content=runtime.json_body(payload),
                extensions=runtime.request_timeout(settings.SMS_HTTP_TIMEOUT, settings.SMS_HTTP_CONNECT_TIMEOUT),
            )
            response = await runtime.send(request)
        except TRANSPORT_ERRORS as exc:
            return SendOutcome(ref=message.ref, provider=self.provider, error=provider_error(exc))
        code, text = ("", "") if response.is_success else self.error_detail(response)
        error = provider_error(response, detail=text, code=code)
        if error is not None:
            return SendOutcome(ref=message.ref, provider=self.provider, error=error)
        provider_message_id = self.message_id(response)
        if not provider_message_id:
            # Accepted all the same: the callback URL carries our ref and settles it.
            logger.warning("%s accepted message %s without a message id", self.provider, message.ref)
        return SendOutcome(ref=message.ref, provider=self.provider, provider_message_id=provider_message_id)
