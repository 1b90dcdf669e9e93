"""Inbound routing registry: apps (e.g. relay) claim inbound messages before the inbox does.

A router gets the :class:`providers.status.InboundSMS` and returns True if it
consumed the message; the first router that does wins, and then nothing else
acts on it (no InboundMessage row, no keyword handling, no reply). Routers run
in registration order, inside the webhook's transaction, before
``recipients.services.inbound_handle`` classifies keywords.

A router that consumes a STOP is responsible for the opt-out on its numbers:
either return False for keyword texts (``recipients.services.inbound_keyword_kind``)
so the normal handling runs, or call ``recipients.services.recipient_opt_out``.
"""

from __future__ import annotations

from collections.abc import Callable

from providers.status import InboundSMS

Router = Callable[[InboundSMS], bool]
_routers: list[Router] = []


def register_inbound_router(func: Router) -> Router:
    """Add ``func`` once (safe to call from ``AppConfig.ready`` more than once)."""
    if func not in _routers:
        _routers.append(func)
    return func


def unregister_inbound_router(func: Router) -> None:
    if func in _routers:
        _routers.remove(func)


def route_inbound(inbound: InboundSMS) -> bool:
    """Offer ``inbound`` to each router in turn; True if one consumed it."""
    return any(router(inbound) for router in list(_routers))
