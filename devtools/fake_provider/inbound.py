"""Inbound injection: post an SMS/MMS "from a handset" to the application's webhook."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .server import FakeProviderServer

INBOUND_KEYS = frozenset(
    {"provider", "from", "to", "text", "media_urls", "url", "message_intent", "tamper_signature", "extra"}
)


async def send_inbound(
    server: FakeProviderServer,
    provider: str,
    from_: str,
    to: str,
    text: str = "",
    media_urls: list[Any] | None = None,
    url: str | None = None,
    message_intent: str | None = None,
    tamper_signature: bool = False,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Post an inbound message as ``provider`` would; returns the application's answer.

    ``media_urls`` items are URLs or ``{"url", "mime_type", "file_size", "file_name"}`` dicts;
    ``url`` defaults to the ``<provider>_inbound_url`` setting; ``message_intent`` overrides
    the provider's own keyword detection; ``extra`` fields are merged into the payload.
    """
    api = server.apis.get(provider)
    if api is None:
        names = " or ".join(repr(name) for name in server.apis)
        raise ValueError(f"provider must be {names}")
    url = url or api.inbound_url
    mid, payload = api.inbound(from_, to, text, list(media_urls or []), message_intent)
    if extra:
        api.add_extra(payload, extra)
    if not url:
        raise ValueError(f"no url given and no {provider}_inbound_url configured")
    status, body = await server.webhooks.send(api, url, "POST", payload, tamper_signature)
    s = server.state.stats
    if status is not None and 200 <= status < 300:
        s["inbound_sent"] += 1
    else:
        s["inbound_failed"] += 1
    result = {"status": status, "body": body, "id": mid, "url": url, "payload": payload}
    if status is None:
        result["error"] = body
    return result
