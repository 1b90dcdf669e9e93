"""What a provider module implements: its API shape, and nothing the providers share.

The core (:mod:`.server`) owns the HTTP server, the recorded state, fault injection, the
scheduling of delivery reports and the sending of webhooks. For every send it calls, in order:
:meth:`ProviderAPI.authorize`, (faults and latency), :meth:`ProviderAPI.parse_send`,
(``fail_numbers``), :meth:`ProviderAPI.accepted`; for every delivery report
:meth:`ProviderAPI.delivery_events` then :meth:`ProviderAPI.delivery_report` and
:meth:`ProviderAPI.webhook`; for an injected inbound message :meth:`ProviderAPI.inbound`.
"""

from __future__ import annotations

import dataclasses
import random
from typing import TYPE_CHECKING, Any, ClassVar

from aiohttp import web

from .records import Message

if TYPE_CHECKING:
    from .server import FakeProviderServer

#: A step of a message's delivery reports, in the provider's own terms (opaque to the core).
Event = tuple


@dataclasses.dataclass
class Webhook:
    """One request the fake makes to the application (a delivery report or an inbound message)."""

    method: str
    headers: dict[str, str]
    body: bytes | None = None
    query: dict[str, Any] | None = None  # added to the URL's own query string


class ProviderAPI:
    """Base class of :class:`.plivo.PlivoAPI`, :class:`.flowroute.FlowrouteAPI`, ..."""

    #: "plivo": the ``provider`` of recorded messages, of ``send_inbound`` and of the
    #: ``accepted_<name>`` counter, and the prefix of the ``<name>_inbound_url`` setting.
    name: ClassVar[str]

    def __init__(self, server: FakeProviderServer):
        self.server = server

    @property
    def config(self) -> Any:
        return self.server.config

    @property
    def rng(self) -> random.Random:
        return self.server.state.rng

    def configure(self) -> None:
        """Called after every configuration change (precompute what depends on settings)."""

    # -- the send API ----------------------------------------------------------------

    def owns(self, path: str) -> bool:
        """True when ``path`` is this provider's send endpoint."""
        raise NotImplementedError

    def authorize(self, request: web.BaseRequest, path: str) -> None:
        """Check route, method and credentials; raise :class:`.httputil.HTTPError` to refuse."""
        raise NotImplementedError

    async def parse_send(self, request: web.BaseRequest) -> list[Message]:
        """Read and validate the body: the messages to accept (one per destination)."""
        raise NotImplementedError

    def accepted(self, request: web.BaseRequest, msgs: list[Message]) -> web.Response:
        """The success answer for ``msgs``."""
        raise NotImplementedError

    def error(self, status: int, detail: str) -> web.Response:
        """An error answer in the provider's error format."""
        raise NotImplementedError

    # -- delivery reports --------------------------------------------------------------

    def delivery_events(self, msg: Message) -> list[Event]:
        """The reports ``msg`` gets, in order (before duplication and reordering)."""
        raise NotImplementedError

    def delivery_report(self, msg: Message, event: Event) -> tuple[str, str, dict[str, Any]]:
        """``(status, HTTP method, payload)`` of the report of ``event``."""
        raise NotImplementedError

    def webhook(self, url: str, method: str, payload: dict[str, Any], tamper: bool = False) -> Webhook:
        """Encode (and sign) ``payload`` for ``url``; ``tamper`` makes the signature wrong."""
        raise NotImplementedError

    # -- inbound messages --------------------------------------------------------------

    @property
    def inbound_url(self) -> str | None:
        return getattr(self.config, f"{self.name}_inbound_url", None)

    def inbound(
        self, from_: str, to: str, text: str, media: list[Any], message_intent: str | None
    ) -> tuple[str, dict[str, Any]]:
        """``(message id, payload)`` of an inbound SMS/MMS."""
        raise NotImplementedError

    def add_extra(self, payload: dict[str, Any], extra: dict[str, Any]) -> None:
        """Merge caller-given fields into an inbound payload."""
        raise NotImplementedError
