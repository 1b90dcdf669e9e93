"""Plivo in the fake provider: what the provider contract tests need to aim smsportal at it.

Every provider's fake module has the same two functions; tests/providers/test_contract.py
finds the module by the provider's registry name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .server import FakeConfig

NAME = "plivo"


def product_settings(config: FakeConfig, url: str) -> dict[str, str]:
    """smsportal settings that send through the fake at ``url`` and accept its signed callbacks."""
    return {"PLIVO_API_URL": url, "PLIVO_AUTH_ID": config.plivo_auth_id, "PLIVO_AUTH_TOKEN": config.plivo_auth_token}


def forged_inbound(url: str) -> tuple[str, dict[str, Any]]:
    """An inbound post smsportal must refuse: the URL, and ``send_inbound``'s extra arguments."""
    return url, {"tamper_signature": True}
