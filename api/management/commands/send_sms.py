"""Send one SMS or MMS the way the API does: ``manage.py send_sms --to ... --body ... --user NAME``."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts.models import User
from recipients.sending import message_send_single


class Command(BaseCommand):
    help = "Queue one SMS or MMS from a user's authorized number and print the message id."

    def add_arguments(self, parser):
        parser.add_argument("--to", required=True, help="Destination number")
        parser.add_argument("--body", default="", help="Message text")
        parser.add_argument("--media", action="append", default=[], help="Media URL (https); repeat for several")
        parser.add_argument("--from", dest="sender", default=None, help="Sender number; optional with exactly one")
        parser.add_argument("--user", required=True, help="Username to send as (their roles and numbers apply)")

    def handle(self, *args, **options):
        user = User.objects.filter(username=options["user"]).first()
        if user is None:
            raise CommandError(f"No user named {options['user']!r}.")
        try:
            message = message_send_single(
                user=user,
                to=options["to"],
                body=options["body"],
                media_urls=options["media"],
                sender_number=options["sender"],
            )
        except ValidationError as exc:
            details = "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in exc.message_dict.items())
            raise CommandError(details) from None
        except PermissionDenied as exc:
            raise CommandError(str(exc)) from None
        message.refresh_from_db()
        self.stdout.write(f"message {message.pk} {message.status}")
