"""Inbound routing registry: apps (e.g. relay) claim inbound messages before the inbox does.

A router gets the :class:`providers.status.InboundSMS` and returns True if it
consumed the message; the first router that does wins.
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


def route_inbound(inbound: InboundSMS) -> bool:
    """Offer ``inbound`` to each router in turn; True if one consumed it."""
    return any(router(inbound) for router in list(_routers))
