"""Template helpers for the shared layout."""

from __future__ import annotations

from django import template
from django.urls import NoReverseMatch, reverse

from accounts.permissions import has_role

register = template.Library()

# Sections built by other apps: the first URL name that resolves wins, else the path.
NAV = (
    ("dashboard", "Dashboard", ("dashboard",), "/", False),
    ("campaigns", "Campaigns", ("campaign_list",), "/campaigns/", False),
    (
        "lists",
        "Lists",
        ("recipients:list_index", "recipients:lists", "recipients:list_list", "list_index"),
        "/lists/",
        False,
    ),
    ("inbox", "Inbox", ("recipients:inbox",), "/inbox", False),
    ("senders", "Senders", ("accounts:senders",), "/senders/", False),
    ("tokens", "API tokens", ("accounts:tokens",), "/tokens/", False),
    ("relay", "Relay", ("relay:list",), "/relay/", False),
    ("users", "Users", ("accounts:users",), "/users/", True),
    ("audit", "Audit", ("accounts:audit",), "/audit/", True),
)


def _first_url(names: tuple[str, ...], fallback: str) -> str:
    for name in names:
        try:
            return reverse(name)
        except NoReverseMatch:
            continue
    return fallback


@register.inclusion_tag("_nav.html", takes_context=True)
def main_nav(context) -> dict:
    request = context.get("request")
    user = context.get("user")
    path = request.path if request else ""
    admin = user is not None and has_role(user, "admin")
    items = []
    for key, label, names, fallback, admin_only in NAV:
        if admin_only and not admin:
            continue
        url = _first_url(names, fallback)
        current = path == url if url == "/" else path.startswith(url.rstrip("/"))
        items.append({"key": key, "label": label, "url": url, "current": current})
    return {"items": items}
