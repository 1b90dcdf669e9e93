"""The embedded default in one command: migrate, seed a demo, run web + worker + beat."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Set up and run the portal on this machine: web server, Celery worker and beat."

    def add_arguments(self, parser) -> None:
        parser.add_argument("addrport", nargs="?", default="127.0.0.1:8000")
        parser.add_argument("--no-demo", action="store_true", help="Do not seed or launch the demo")
        parser.add_argument("--password", help="Demo admin password (default: random, printed)")

    def handle(self, *args, addrport: str, no_demo: bool, password: str | None, **options) -> None:
        call_command("migrate", interactive=False, verbosity=0)
        call_command("createcachetable", verbosity=0)
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "smsportal", "worker", "-B", "-l", "INFO", "-c", "2",
             "-s", str(settings.VAR_DIR / "celerybeat-schedule")],
            env=dict(os.environ),
        )  # fmt: skip
        try:
            if not no_demo:
                call_command("seed_demo", password=password)
                self._launch_demo()
            self.stdout.write(self.style.SUCCESS(f"Open http://{addrport}/ (admin at /admin/)"))
            call_command("runserver", addrport, use_reloader=False)
        finally:
            worker.send_signal(signal.SIGTERM)
            worker.wait(timeout=30)

    def _launch_demo(self) -> None:
        from accounts.models import User
        from campaigns.models import Campaign
        from campaigns.services import campaign_launch

        campaign = Campaign.objects.filter(name="Welcome (demo)", status=Campaign.Status.DRAFT).first()
        if campaign is not None:
            campaign_launch(campaign=campaign, user=User.objects.get(username="admin"))
            self.stdout.write(f"Demo campaign launched: watch it at /campaigns/{campaign.pk} or in /admin/.")
