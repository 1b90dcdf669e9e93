"""Replace the database's contents with a backup made by ``manage.py backup``."""

from __future__ import annotations

import fcntl
import os
import subprocess
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections

from smsportal.management.commands import _pgtools


class Command(BaseCommand):
    help = "Restore the database from a backup file. Everything in the database now is replaced."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("backup", help="a file written by `manage.py backup`")
        parser.add_argument("--noinput", "--no-input", action="store_false", dest="interactive")

    def handle(self, *args: Any, backup: str, interactive: bool, **options: Any) -> None:
        path = Path(backup)
        if not path.is_file():
            raise CommandError(f"{path} is not a file")
        _refuse_while_portal_runs(Path(settings.VAR_DIR))
        listing = subprocess.run(
            [_pgtools.tool("pg_restore"), "--list", str(path)], capture_output=True, text=True, check=False
        )
        if listing.returncode != 0:
            raise CommandError(f"{path} is not a backup made by `manage.py backup`: {listing.stderr.strip()}")
        name = settings.DATABASES["default"]["NAME"]
        if interactive:
            answer = input(f"This replaces everything in database {name!r} with {path}. Type 'yes' to go on: ")
            if answer.strip().lower() != "yes":
                raise CommandError("Restore cancelled.")
        connections.close_all()
        # pg_restore --clean cannot drop a partition's inherited constraints (the messages table is
        # partitioned by month), so the schema is emptied instead, in the same transaction as the
        # restore: psql runs the DROP and pg_restore's script as one, and a failure changes nothing.
        env = _pgtools.connection_env()
        script = subprocess.Popen(
            [_pgtools.tool("pg_restore"), "--no-owner", "--file=-", str(path)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert script.stdout is not None
        result = subprocess.run(
            [
                _pgtools.tool("psql"),
                "--no-psqlrc",
                "--quiet",
                "--single-transaction",
                "--set=ON_ERROR_STOP=1",
                "--dbname",
                name,
                "--command",
                "DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public;",
                "--file=-",
            ],
            env=env,
            stdin=script.stdout,
            capture_output=True,
            text=True,
            check=False,
        )
        script.stdout.close()
        script_errors = script.stderr.read().decode(errors="replace") if script.stderr else ""
        if script.wait() != 0 or result.returncode != 0:
            detail = (script_errors + result.stderr).strip()
            raise CommandError(f"pg_restore failed; the database is unchanged: {detail}")
        self.stdout.write(self.style.SUCCESS(f"Restored {name!r} from {path}"))


def _refuse_while_portal_runs(var_dir: Path) -> None:
    lock = var_dir / "runportal.lock"
    if not lock.exists():
        return
    fd = os.open(lock, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise CommandError("runportal is running on this database; stop it before restoring.") from None
    finally:
        os.close(fd)
