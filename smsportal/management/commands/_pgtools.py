"""Run PostgreSQL's client tools (pg_dump, pg_restore, psql) against the configured database."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from django.conf import settings
from django.core.management.base import CommandError
from django.utils import timezone

from smsportal import embedded


def tool(name: str) -> str:
    """The wheel's copy first: it matches the embedded server's version and is newer than most servers."""
    bin_dir = embedded.postgres_bin_dir()
    if bin_dir is not None and (bin_dir / name).exists():
        return str(bin_dir / name)
    found = shutil.which(name)
    if not found:
        raise CommandError(f"{name} was not found; install the PostgreSQL client tools")
    return found


def connection_env() -> dict[str, str]:
    """libpq's own variables, so no password ever appears on a command line."""
    db = settings.DATABASES["default"]
    env = dict(os.environ)
    for var, key in (("PGHOST", "HOST"), ("PGPORT", "PORT"), ("PGUSER", "USER"), ("PGPASSWORD", "PASSWORD")):
        value = str(db.get(key) or "")
        if value:
            env[var] = value
        else:
            env.pop(var, None)
    host = db.get("OPTIONS", {}).get("host")
    if host:
        env["PGHOST"] = host
    env["PGDATABASE"] = db["NAME"]
    return env


def default_backup_path() -> Path:
    return Path(settings.VAR_DIR) / "backups" / f"smsportal-{timezone.now():%Y%m%d-%H%M%S}.dump"
