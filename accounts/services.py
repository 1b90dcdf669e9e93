"""Writes for accounts. ``audit_record`` is the one way to write the audit log."""

from __future__ import annotations

import logging

logger = logging.getLogger("smsportal.audit")


def audit_record(*, actor, action: str, target=None, detail: str = "") -> None:
    """Record who did what to which object (filled in by the accounts issue with a model)."""
    logger.info(
        "audit %s by %s on %s %s",
        action,
        getattr(actor, "username", actor),
        f"{type(target).__name__}:{getattr(target, 'pk', '')}" if target is not None else "-",
        detail,
    )
