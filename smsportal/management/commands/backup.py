"""Back up the whole database to one file (pg_dump's custom format), embedded or not."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from smsportal.management.commands import _pgtools


class Command(BaseCommand):
    help = "Write a backup of the database to a file (default: var/backups/smsportal-<time>.dump)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("output", nargs="?", help="file to write")

    def handle(self, *args: Any, output: str | None, **options: Any) -> None:
        path = Path(output) if output else _pgtools.default_backup_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        command = [_pgtools.tool("pg_dump"), "--format=custom", "--no-owner", "--file", str(partial)]
        result = subprocess.run(command, env=_pgtools.connection_env(), capture_output=True, text=True, check=False)
        if result.returncode != 0:
            partial.unlink(missing_ok=True)
            raise CommandError(f"pg_dump failed: {result.stderr.strip()}")
        partial.replace(path)  # a file at ``path`` is always a complete backup
        self.stdout.write(self.style.SUCCESS(f"Backed up to {path} ({path.stat().st_size:,} bytes)"))
