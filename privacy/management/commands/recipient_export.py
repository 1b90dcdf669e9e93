"""Subject access: ``manage.py recipient_export --phone +14155550100 [--out FILE]`` writes JSON."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from privacy.services import subject_export
from smsportal.phone import InvalidNumber


class Command(BaseCommand):
    help = "Write everything held about a phone number as JSON (audited)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--phone", required=True, help="The number, e.g. +14155550100")
        parser.add_argument("--out", default="-", help="File to write (default: standard output)")

    def handle(self, *args: Any, phone: str, out: str, **options: Any) -> None:
        try:
            data = subject_export(phone=phone, actor_description="manage.py recipient_export")
        except InvalidNumber as exc:
            raise CommandError(f"--phone: {exc}") from None
        text = json.dumps(data, indent=2, ensure_ascii=False, default=str)
        if out == "-":
            self.stdout.write(text)
        else:
            with open(out, "w", encoding="utf-8") as handle:
                handle.write(text + "\n")
            self.stderr.write(f"wrote {out}")
