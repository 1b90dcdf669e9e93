"""Flowroute in the fake provider: what the provider contract tests need to aim smsportal at it.

Every provider's fake module has the same two functions; tests/providers/test_contract.py
finds the module by the provider's registry name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .server import FakeConfig

NAME = "flowroute"
# Flowroute signs nothing: smsportal puts this secret in its callback URLs.
WEBHOOK_SECRET = "fake-flowroute-webhook-secret"


def product_settings(config: FakeConfig, url: str) -> dict[str, str]:
    """smsportal settings that send through the fake at ``url`` and accept its callbacks."""
    return {
        "FLOWROUTE_API_URL": url,
        "FLOWROUTE_ACCESS_KEY": config.flowroute_access_key,
        "FLOWROUTE_SECRET_KEY": config.flowroute_secret_key,
        "FLOWROUTE_WEBHOOK_SECRET": WEBHOOK_SECRET,
    }


def forged_inbound(url: str) -> tuple[str, dict[str, Any]]:
    """An inbound post smsportal must refuse: the URL (with a wrong secret), and ``send_inbound``'s extra arguments."""
    return url.replace(f"/{WEBHOOK_SECRET}/", "/not-the-webhook-secret/"), {}
