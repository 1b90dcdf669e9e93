"""Launch a draft campaign from the command line: ``manage.py launch_campaign ID --user NAME``."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from campaigns.models import Campaign
from campaigns.services import TransitionError, campaign_launch


class Command(BaseCommand):
    help = "Launch a draft campaign as the given user (who must be authorized for its senders)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("campaign_id", type=int)
        parser.add_argument("--user", required=True, help="Username of the person launching it")

    def handle(self, *args: Any, campaign_id: int, user: str, **options: Any) -> None:
        campaign = Campaign.objects.filter(pk=campaign_id).first()
        if campaign is None:
            raise CommandError(f"No campaign with id {campaign_id}.")
        person = get_user_model().objects.filter(username=user).first()
        if person is None:
            raise CommandError(f"No user named {user!r}.")
        try:
            campaign = campaign_launch(campaign=campaign, user=person)
        except ValidationError as exc:
            problems = "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in exc.message_dict.items())
            raise CommandError(f"Cannot launch: {problems}") from None
        except TransitionError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(self.style.SUCCESS(f"Campaign {campaign.pk} is {campaign.get_status_display().lower()}."))
