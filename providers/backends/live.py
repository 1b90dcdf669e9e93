"""Routes each message to the backend of its sender number's provider.

``SMS_BACKEND = "providers.backends.live.SMSBackend"`` in production;
``SMS_PROVIDER_BACKENDS`` maps a provider name ("plivo", "flowroute") to a
backend's dotted path.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.conf import settings

from providers.backends import get_backend
from providers.backends.base import BaseBackend, OutboundSMS, SendOutcome
from providers.errors import ConfigurationError


class SMSBackend(BaseBackend):
    provider = "live"

    def backend_for(self, provider: str) -> BaseBackend:
        path = settings.SMS_PROVIDER_BACKENDS.get(provider)
        if not path:
            raise ConfigurationError(f"no backend for provider {provider!r}: see SMS_PROVIDER_BACKENDS")
        return get_backend(path)

    async def send_one(self, message: OutboundSMS) -> SendOutcome:
        return await self.backend_for(message.provider).send_one(message)

    def group_size(self, provider: str) -> int:
        try:
            return self.backend_for(provider).group_size(provider)
        except ConfigurationError:
            return 1  # its send_one says why

    async def send_group(self, messages: Sequence[OutboundSMS]) -> list[SendOutcome]:
        return await self.backend_for(messages[0].provider).send_group(messages)
