"""Erasure: ``manage.py recipient_erase --phone +14155550100 --yes`` removes everything held about a number
except its opt-out (a suppression holding only a hash of the number)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from privacy.services import subject_erase
from smsportal.phone import InvalidNumber


class Command(BaseCommand):
    help = "Erase everything held about a phone number, except its opt-out (audited)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--phone", required=True, help="The number, e.g. +14155550100")
        parser.add_argument("--yes", action="store_true", help="Confirm: this cannot be undone")

    def handle(self, *args: Any, phone: str, yes: bool, **options: Any) -> None:
        if not yes:
            raise CommandError("Erasure cannot be undone: add --yes to confirm.")
        try:
            counts = subject_erase(phone=phone, actor_description="manage.py recipient_erase")
        except InvalidNumber as exc:
            raise CommandError(f"--phone: {exc}") from None
        for kind, count in counts.items():
            self.stdout.write(f"{kind}: {count}")
