"""One error hierarchy for every provider, with a ``permanent`` flag.

Transient errors are retried with backoff; permanent ones fail the message at
once. Authentication failures pause the campaign instead of burning the list.
A lost answer (:class:`OutcomeUnknown`) is neither: the message waits for its report.
"""

from __future__ import annotations


class ProviderError(Exception):
    permanent: bool = False

    def __init__(
        self,
        message: str,
        *,
        code: str = "",
        http_status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.http_status = http_status
        self.retry_after = retry_after

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, code={self.code!r}, http_status={self.http_status})"


class TransientError(ProviderError):
    """Network error, timeout, 5xx: worth trying again later."""


class RateLimited(TransientError):
    """429: try again after ``retry_after`` seconds."""


class PermanentError(ProviderError):
    """The provider will never accept this message as it is."""

    permanent = True


class InvalidRecipient(PermanentError):
    """The destination number is invalid or unreachable."""


class RecipientOptedOut(PermanentError):
    """The provider says the recipient opted out (Plivo error 200)."""


class AuthenticationFailed(PermanentError):
    """Our credentials were refused. Pauses the campaign: every send would fail."""


class ConfigurationError(PermanentError):
    """The backend is not configured (missing credentials)."""


class OutcomeUnknown(ProviderError):
    """A request that may have been accepted but whose answer was lost (read timeout, dropped after
    sending) or could not be matched to this message. Never retried at once: sending again could
    deliver twice; the provider's delivery report settles the message (``unknown`` until then), and
    only a message that heard no report for its provider's window goes out again."""
