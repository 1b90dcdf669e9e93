"""The names a person sees for message statuses: one vocabulary for every page, chart and export.

Each status belongs to exactly one outcome, so the outcomes of a campaign add up to its total and
no message is counted twice. Per-status names are ``MessageStatus`` labels; an outcome's name is
never reused for one of its statuses: "Failed" is the outcome, its statuses are "Send failed",
"Undelivered" and "Expired"; "Sent" is the outcome, its statuses "Queued at provider", "Passed to
carrier" and "Outcome unknown".
"""

from __future__ import annotations

from dataclasses import dataclass

from messaging.models import MessageStatus

S = MessageStatus


@dataclass(frozen=True)
class Outcome:
    key: str  # also the CSS class of its colour
    label: str
    statuses: tuple[MessageStatus, ...]
    help: str


OUTCOMES: tuple[Outcome, ...] = (
    Outcome("waiting", "Waiting", (S.PENDING, S.CLAIMED, S.SENDING), "not handed to the provider yet"),
    Outcome("sent", "Sent", (S.QUEUED, S.SENT, S.UNKNOWN), "handed to the provider, no delivery report yet"),
    Outcome("delivered", "Delivered", (S.DELIVERED,), "the carrier reported delivery"),
    Outcome("failed", "Failed", (S.FAILED, S.UNDELIVERED, S.EXPIRED), "not accepted, undelivered or expired"),
    Outcome("not_sent", "Not sent", (S.SKIPPED, S.CANCELLED), "skipped for lack of consent, or cancelled"),
)
OUTCOME_BY_KEY = {o.key: o for o in OUTCOMES}
OUTCOME_OF_STATUS: dict[str, Outcome] = {s.value: o for o in OUTCOMES for s in o.statuses}
FAILED_STATUSES = OUTCOME_BY_KEY["failed"].statuses
# Outcomes drawn in charts over time: each message once, at the time it was sent (or failed).
CHARTED = ("sent", "delivered", "failed")


def status_label(status: str) -> str:
    """The user-facing name of one status (what the log, exports and API labels show)."""
    try:
        return MessageStatus(status).label
    except ValueError:
        return status
