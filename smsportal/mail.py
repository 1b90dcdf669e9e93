"""Outgoing email (password reset) configured from the environment.

``EMAIL_URL`` is one of ``smtp://user:password@host:587`` (STARTTLS), ``smtps://…:465`` (TLS),
``console:`` (print to the log) or ``file:///path/to/dir``; or set ``EMAIL_HOST`` (with
``EMAIL_PORT``, ``EMAIL_HOST_USER``, ``EMAIL_HOST_PASSWORD``, ``EMAIL_USE_TLS``). Without either,
development prints mail to the console, and production has no email: password reset is switched
off with a page that says so (``PASSWORD_RESET_ENABLED``), instead of failing with a 500.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

from smsportal.env import env_bool, env_int, env_secret, env_str

_SMTP = "django.core.mail.backends.smtp.EmailBackend"


def email_settings(*, production: bool) -> dict[str, Any]:
    """Django's EMAIL_* settings, and PASSWORD_RESET_ENABLED (whether mail can actually be sent)."""
    url = env_secret("EMAIL_URL", "")
    if url:
        return {**_from_url(url), "PASSWORD_RESET_ENABLED": True}
    host = env_str("EMAIL_HOST", "")
    if host:
        return {
            "EMAIL_BACKEND": _SMTP,
            "EMAIL_HOST": host,
            "EMAIL_PORT": env_int("EMAIL_PORT", 587, minimum=1),
            "EMAIL_HOST_USER": env_str("EMAIL_HOST_USER", ""),
            "EMAIL_HOST_PASSWORD": env_secret("EMAIL_HOST_PASSWORD", ""),
            "EMAIL_USE_TLS": env_bool("EMAIL_USE_TLS", True),
            "EMAIL_USE_SSL": env_bool("EMAIL_USE_SSL", False),
            "EMAIL_TIMEOUT": 10,
            "PASSWORD_RESET_ENABLED": True,
        }
    if production:
        return {"EMAIL_BACKEND": "django.core.mail.backends.dummy.EmailBackend", "PASSWORD_RESET_ENABLED": False}
    return {"EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend", "PASSWORD_RESET_ENABLED": True}


def _from_url(url: str) -> dict[str, Any]:
    parts = urlsplit(url)
    if parts.scheme == "console":
        return {"EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend"}
    if parts.scheme == "file":
        if not parts.path:
            raise ImproperlyConfigured("EMAIL_URL=file:// needs a directory, e.g. file:///var/mail/smsportal")
        return {"EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend", "EMAIL_FILE_PATH": parts.path}
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ImproperlyConfigured("EMAIL_URL must be smtp://…, smtps://…, console: or file:///dir")
    query = parse_qs(parts.query)
    ssl = parts.scheme == "smtps" or query.get("ssl", [""])[0] in ("1", "true")
    return {
        "EMAIL_BACKEND": _SMTP,
        "EMAIL_HOST": parts.hostname,
        "EMAIL_PORT": parts.port or (465 if ssl else 587),
        "EMAIL_HOST_USER": unquote(parts.username or ""),
        "EMAIL_HOST_PASSWORD": unquote(parts.password or ""),
        "EMAIL_USE_SSL": ssl,
        "EMAIL_USE_TLS": not ssl and query.get("tls", ["1"])[0] not in ("0", "false"),
        "EMAIL_TIMEOUT": 10,
    }
