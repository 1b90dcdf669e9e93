"""SMS backends, chosen by ``settings.SMS_BACKEND`` the way Django picks its email backend."""

from __future__ import annotations

from functools import cache

from django.conf import settings
from django.utils.module_loading import import_string

from providers.backends.base import BaseBackend, OutboundSMS, SendOutcome

__all__ = ["BaseBackend", "OutboundSMS", "SendOutcome", "get_backend"]


@cache
def _load(path: str) -> BaseBackend:
    backend: BaseBackend = import_string(path)()
    return backend


def get_backend(path: str | None = None) -> BaseBackend:
    """The configured backend (one instance per process; backends hold no per-send state)."""
    return _load(path or settings.SMS_BACKEND)
