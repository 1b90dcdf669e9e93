"""Template helpers for the shared layout."""

from __future__ import annotations

from django import template
from django.urls import reverse

from accounts.permissions import has_role

register = template.Library()

# (key, label, URL name, admins only). Every name must resolve: tests/ui/test_templates.py checks.
NAV = (
    ("dashboard", "Dashboard", "dashboard", False),
    ("campaigns", "Campaigns", "campaign_list", False),
    ("lists", "Lists", "recipients:list_index", False),
    ("inbox", "Inbox", "recipients:inbox", False),
    ("senders", "Senders", "accounts:senders", False),
    ("tokens", "API tokens", "accounts:tokens", False),
    ("relay", "Relay", "relay:list", False),
    ("users", "Users", "accounts:users", True),
    ("audit", "Audit", "accounts:audit", True),
)


@register.inclusion_tag("_nav.html", takes_context=True)
def main_nav(context) -> dict:
    request = context.get("request")
    user = context.get("user")
    path = request.path if request else ""
    admin = user is not None and has_role(user, "admin")
    items = []
    for key, label, name, admin_only in NAV:
        if admin_only and not admin:
            continue
        url = reverse(name)
        current = path == url if url == "/" else path.startswith(url.rstrip("/"))
        items.append({"key": key, "label": label, "url": url, "current": current})
    return {"items": items}


@register.filter
def money(value_micros: int | None, currency: str = "") -> str:
    """Micro-units as an amount: ``{{ cost.actual_micros|money:cost.currency }}`` -> "1.2346 USD"."""
    from campaigns.selectors import format_money

    return format_money(value_micros, currency)
