"""Run the retention purge now (the beat task does it hourly): ``manage.py purge_expired_data``."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from recipients.retention import purge_expired


class Command(BaseCommand):
    help = "Remove message bodies, messages, inbound texts and import files past their retention age."

    def handle(self, *args: Any, **options: Any) -> None:
        for kind, count in purge_expired().items():
            self.stdout.write(f"{kind}: {count}")
