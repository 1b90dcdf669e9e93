"""Experiments that inform a suggestion; never used by the product.

``AiohttpPlivoBackend`` is the product's Plivo backend with httpx swapped for a bare
``aiohttp.ClientSession`` (Authorization header built once), to measure what the send
path gains from skipping httpx's request building. Success path only: every non-2xx
answer becomes a TransientError, which is enough for a fault-free fan-out run.
"""

from __future__ import annotations

import aiohttp
from django.conf import settings

from providers.backends.base import SendOutcome
from providers.backends.plivo import SMSBackend, build_payload
from providers.errors import TransientError

_session: dict[int, aiohttp.ClientSession] = {}


def _client() -> aiohttp.ClientSession:
    import asyncio

    loop = asyncio.get_running_loop()
    session = _session.get(id(loop))
    if session is None:
        auth = aiohttp.BasicAuth(settings.PLIVO_AUTH_ID, settings.PLIVO_AUTH_TOKEN).encode()
        session = _session[id(loop)] = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=settings.SMS_MAX_IN_FLIGHT),
            headers={"Authorization": auth, "User-Agent": "smsportal/0.1"},
            timeout=aiohttp.ClientTimeout(total=settings.SMS_HTTP_TIMEOUT),
        )
    return session


class AiohttpPlivoBackend(SMSBackend):
    async def send_one(self, message) -> SendOutcome:
        url = f"{settings.PLIVO_API_URL}/v1/Account/{settings.PLIVO_AUTH_ID}/Message/"
        try:
            async with _client().post(url, json=build_payload(message)) as response:
                body = await response.json(content_type=None)
                if 200 <= response.status < 300:
                    uuid = (body.get("message_uuid") or [""])[0]
                    return SendOutcome(ref=message.ref, provider=self.provider, provider_message_id=uuid)
                error = TransientError(f"HTTP {response.status}")
        except (aiohttp.ClientError, TimeoutError) as exc:
            error = TransientError(repr(exc))
        return SendOutcome(ref=message.ref, provider=self.provider, error=error)
