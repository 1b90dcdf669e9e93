"""Which API token scope each endpoint needs: the one table, enforced by api.permissions.TokenHasScope.

Reads (GET, HEAD, OPTIONS) need no scope beyond the token itself: every token may read what its
user's role may see. A write needs the scope of its view (keyed by the router's basename); an
action may name its own in ``ACTION_SCOPES``. A write endpoint missing here is refused to every
token (fail closed), and tests/api/test_tokens.py fails until it is added.
Signed-in browser sessions are not limited by scopes (only by the role).
"""

from __future__ import annotations

from accounts.models import TokenScope

WRITE_SCOPES: dict[str, str] = {
    "list": TokenScope.MANAGE_RECIPIENTS.value,
    "recipient": TokenScope.MANAGE_RECIPIENTS.value,
    "import": TokenScope.MANAGE_RECIPIENTS.value,
    "campaign": TokenScope.SEND.value,
    "message": TokenScope.SEND.value,
    "relay-conversation": TokenScope.SEND.value,
    "sender": TokenScope.MANAGE_SETTINGS.value,
    "relay-number": TokenScope.MANAGE_SETTINGS.value,
    "token": TokenScope.MANAGE_SETTINGS.value,
    "webhook-endpoint": TokenScope.MANAGE_SETTINGS.value,
    "webhook-event": TokenScope.MANAGE_SETTINGS.value,
}

# (basename, action) whose scope differs from the view's.
ACTION_SCOPES: dict[tuple[str, str], str] = {}


def scope_for(*, basename: str, action: str, safe: bool) -> str | None:
    """The scope a request needs; None when no scope covers it (refused to tokens)."""
    if safe:
        return TokenScope.READ.value
    return ACTION_SCOPES.get((basename, action)) or WRITE_SCOPES.get(basename)
