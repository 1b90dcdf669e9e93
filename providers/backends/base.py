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
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass

import httpx
from django.conf import settings

from providers import registry, runtime
from providers.errors import (
    InvalidRecipient,
    OutcomeUnknown,
    PermanentError,
    ProviderError,
    RecipientOptedOut,
    TransientError,
)
from providers.http_errors import TRANSPORT_ERRORS, error_detail, provider_error
from providers.refs import MAX_REF_CHARS, RefRuns

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
    request: str = ""  # set when several messages shared one request: the same for all of them

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

    def group_size(self, provider: str) -> int:
        """How many messages of identical content one request to ``provider`` may carry (1: one each)."""
        return 1

    async def send_group(self, messages: Sequence[OutboundSMS]) -> list[SendOutcome]:
        """One request for several messages of identical content to distinct numbers; outcomes in order."""
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
        except Exception as exc:  # a bug, maybe after the request went out: never sent again blindly (as a group's)
            logger.exception("send of message %s failed", message.ref)
            return SendOutcome(
                ref=message.ref, provider=self.provider, error=OutcomeUnknown(f"unexpected error: {exc!r}")
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
        groupable: Collection[str] = (),
    ) -> concurrent.futures.Future[None]:
        """Send from sync code without waiting: each outcome is handed to ``on_done`` as it completes.

        ``on_started(ref)`` runs once each message passed (or failed) its guard, just before its
        request; both callbacks run on the sender loop's thread and must be quick and thread-safe.
        The process's requests share one limit of ``SMS_MAX_IN_FLIGHT``, however many are started.
        ``groupable``: refs the caller allows to share a request with others of identical content
        (:meth:`groups`); each still passes its own guard, and gets its own outcome.
        """

        async def one(unit: list[OutboundSMS], slots: runtime.Slots) -> None:
            try:
                if len(unit) == 1:
                    outcomes = [await self._guarded_in_slot(unit[0], guard, on_started)]
                else:
                    outcomes = await self._guarded_group(unit, guard, on_started)
            finally:
                slots.release()
            for outcome in outcomes:
                on_done(outcome)

        async def all_of_them() -> None:
            # Only this loop waits for a slot, and a task starts once it holds one: hundreds of
            # tasks waiting on the semaphore made every acquire and release scan them all.
            slots = runtime.slots()
            started = []
            for unit in self.groups(messages, groupable):
                await slots.acquire()
                started.append(asyncio.ensure_future(one(unit, slots)))
            await asyncio.gather(*started)

        return runtime.submit(all_of_them())

    def groups(self, messages: Sequence[OutboundSMS], groupable: Collection[str]) -> list[list[OutboundSMS]]:
        """The requests to make, in order: groupable messages of identical content (provider, sender,
        body, media) share one, up to :meth:`group_size`, each destination once, while the group's
        reference fits a callback URL's (:mod:`providers.refs`); the rest go one per request."""
        units: list[list[OutboundSMS]] = []
        open_groups: dict[tuple[str, str, str, tuple[str, ...]], tuple[list[OutboundSMS], set[str], RefRuns]] = {}
        sizes: dict[str, int] = {}
        for message in messages:
            if groupable and message.ref in groupable:
                size = sizes.get(message.provider) or sizes.setdefault(
                    message.provider, self.group_size(message.provider)
                )
            else:
                size = 1
            if size <= 1:
                units.append([message])
                continue
            key = (message.provider, message.sender, message.body, message.media_urls)
            found = open_groups.get(key)
            if (
                found is None
                or len(found[0]) >= size
                or message.to in found[1]
                or found[2].chars_with(message.ref) > MAX_REF_CHARS
            ):
                found = ([], set(), RefRuns())
                open_groups[key] = found
                units.append(found[0])
            found[0].append(message)
            found[1].add(message.to)
            found[2].add(message.ref)
        return units

    async def _guarded_group(
        self, group: list[OutboundSMS], guard: Guard | None, on_started: Callable[[str], None] | None
    ) -> list[SendOutcome]:
        """Each message's guard (one refused drops only that destination), then one request for the rest."""

        async def passes(message: OutboundSMS) -> bool:
            try:
                return guard is None or await guard(message)
            except Exception:  # a broken guard must not abort the batch: skip, the row is released
                logger.exception("send guard failed for message %s", message.ref)
                return False
            finally:
                if on_started is not None:
                    on_started(message.ref)

        # One after another: groups form only under no rate limit, where a guard waits for no slot,
        # and 50 tasks per group (gather) cost more than the checks themselves.
        verdicts = [await passes(m) for m in group]
        go = [m for m, ok in zip(group, verdicts, strict=True) if ok]
        outcomes = {
            m.ref: SendOutcome(ref=m.ref, provider=self.provider, skipped=True)
            for m, ok in zip(group, verdicts, strict=True)
            if not ok
        }
        try:
            sent = [await self.send_one(go[0])] if len(go) == 1 else await self.send_group(go) if go else []
            if len(go) > 1:
                for outcome in sent:
                    outcome.request = f"group:{go[0].ref}"
        except ProviderError as exc:
            sent = [SendOutcome(ref=m.ref, provider=self.provider, error=exc) for m in go]
        except Exception as exc:  # a bug, maybe after the request went out: never sent again blindly
            logger.exception("group send of %d messages failed", len(go))
            sent = [
                SendOutcome(ref=m.ref, provider=self.provider, error=OutcomeUnknown(f"unexpected error: {exc!r}"))
                for m in go
            ]
        outcomes.update((o.ref, o) for o in sent)
        return [outcomes[m.ref] for m in group]

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

    def build_group_payload(self, messages: Sequence[OutboundSMS]) -> dict[str, object]:
        """The JSON body for several messages of identical content (registry: ``multi_destination``)."""
        raise NotImplementedError

    def group_message_ids(
        self, response: httpx.Response, messages: Sequence[OutboundSMS]
    ) -> dict[str, str | ProviderError]:
        """For each message of an accepted group request (by ref): its provider id, or why it has none."""
        raise NotImplementedError

    def group_size(self, provider: str) -> int:
        # At most SMS_GROUP_SIZE destinations per request, for providers whose API takes several.
        return settings.SMS_GROUP_SIZE if self.info.multi_destination and provider == self.provider else 1

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

    async def _post(self, user: str, password: str, payload: dict[str, object]) -> httpx.Response:
        request = runtime.post_request(
            self.endpoint(user),
            runtime.auth_headers(user, password, self.content_type),
            runtime.json_body(payload),
            runtime.request_timeout(settings.SMS_HTTP_TIMEOUT, settings.SMS_HTTP_CONNECT_TIMEOUT),
        )
        return await runtime.send(request)

    async def send_group(self, messages: Sequence[OutboundSMS]) -> list[SendOutcome]:
        """One request for ``messages`` (identical content, distinct destinations), one outcome each.

        A refusal applies to every message: 5xx and 429 are retried (each on its own next time,
        the engine decides), other 4xx fail them, except a refusal about one destination (invalid
        number, opted out), which sends each again on its own. A request that may have been accepted but whose answer was
        lost makes every message :class:`OutcomeUnknown`: never sent twice.
        """
        user, password = self.credentials()
        outcomes: dict[str, SendOutcome] = {}
        go: list[OutboundSMS] = []
        for message in messages:
            try:
                self.check(message)
                go.append(message)
            except ProviderError as exc:
                outcomes[message.ref] = SendOutcome(ref=message.ref, provider=self.provider, error=exc)
        if len(go) == 1:
            outcomes[go[0].ref] = await self.send_one(go[0])
        elif go:
            for outcome in await self._group_request(user, password, go):
                outcomes[outcome.ref] = outcome
        return [outcomes[m.ref] for m in messages]

    async def _group_request(self, user: str, password: str, go: list[OutboundSMS]) -> list[SendOutcome]:
        payload = self.build_group_payload(go)
        try:
            response = await self._post(user, password, payload)
        except TRANSPORT_ERRORS as exc:  # maybe accepted: OutcomeUnknown unless nothing was sent
            failure = provider_error(exc)
            return [SendOutcome(ref=m.ref, provider=self.provider, error=failure) for m in go]
        code, text = ("", "") if response.is_success else self.error_detail(response)
        error = provider_error(response, detail=text, code=code)
        if isinstance(error, InvalidRecipient | RecipientOptedOut):
            # About one destination, but which is not ours to guess (failing or opting out them all
            # would punish the others): each goes again alone, and its own answer names it.
            error = TransientError(
                f"refused for one of {len(go)} destinations, sent again one by one: {error.message}"[:255],
                code=error.code,
                http_status=error.http_status,
                retry_after=0,
            )
        if error is not None:
            return [SendOutcome(ref=m.ref, provider=self.provider, error=error) for m in go]
        ids = self.group_message_ids(response, go)
        return [
            SendOutcome(ref=m.ref, provider=self.provider, provider_message_id=found)
            if isinstance(found, str)
            else SendOutcome(ref=m.ref, provider=self.provider, error=found)
            for m in go
            for found in [ids.get(m.ref, OutcomeUnknown("accepted, but the answer gave it no id"))]
        ]

    async def send_one(self, message: OutboundSMS) -> SendOutcome:
        user, password = self.credentials()
        self.check(message)
        payload = self.build_payload(message)
        try:
            response = await self._post(user, password, payload)
        except TRANSPORT_ERRORS as exc:  # the same rule as a group's (provider_error): never sent twice
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
