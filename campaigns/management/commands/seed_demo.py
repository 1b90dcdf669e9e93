"""Create the embedded default's demo: an admin, a sender number, a list and a campaign."""

from __future__ import annotations

import secrets
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from accounts.models import AuthorizedSender, User
from campaigns.demo import DEMO_CAMPAIGN, DEMO_LIST, DEMO_NUMBER
from campaigns.models import Campaign
from campaigns.services import campaign_launch
from providers.status import InboundSMS
from recipients.models import ConsentEvent, ConsentStatus, InboundMessage, Recipient, RecipientList
from recipients.services import inbound_handle, recipient_list_add_members, recipient_set_consent

DEMO_PEOPLE = [
    ("+14155550101", "Ada", "Lovelace", "opted_in"),
    ("+14155550102", "Grace", "Hopper", "opted_in"),
    ("+14155550103", "Alan", "Turing", "opted_in"),
    ("+14155550104", "Katherine", "Johnson", "opted_in"),
    ("+14155550666", "Edsger", "Dijkstra", "opted_in"),  # the sandbox reports this one undelivered
    ("+14155550105", "Barbara", "Liskov", "opted_out"),
    ("+14155550106", "Donald", "Knuth", "pending"),
]
# What Ada "texted" the demo number: shows in /inbox, where a reply can be tried.
DEMO_QUESTION = "Hi! Does the welcome offer work in the store too?"


class Command(BaseCommand):
    help = "Seed a demo admin, sender, list and draft campaign (idempotent). Prints the admin login."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--password", help="Demo admin password (default: random, printed)")
        parser.add_argument("--launch", action="store_true", help="Also launch the demo campaign if it is a draft")

    @transaction.atomic
    def handle(self, *args: Any, password: str | None = None, launch: bool = False, **options: Any) -> None:
        admin = User.objects.filter(username="admin").first()
        if admin is None:
            password = password or secrets.token_urlsafe(9)
            admin = User.objects.create_superuser("admin", "admin@example.com", password, role=User.Role.ADMIN)
            self.stdout.write(self.style.SUCCESS(f"Demo admin: username 'admin', password '{password}'"))
        elif password:
            # Only when it changed: a new hash (new salt) would end every session of the admin at each restart.
            if not admin.check_password(password):
                admin.set_password(password)
                admin.save(update_fields=["password"])
            self.stdout.write(self.style.SUCCESS(f"Demo admin: username 'admin', password '{password}'"))
        else:
            self.stdout.write("Demo admin 'admin' exists (password unchanged).")
        sender, _ = AuthorizedSender.objects.get_or_create(
            user=admin, number=DEMO_NUMBER, defaults={"label": "Demo number", "max_mps": 5}
        )
        demo_list, _ = RecipientList.objects.get_or_create(name=DEMO_LIST, defaults={"created_by": admin})
        for phone, first, last, consent in DEMO_PEOPLE:
            person, created = Recipient.objects.get_or_create(
                phone=phone, defaults={"first_name": first, "last_name": last}
            )
            if created and consent != ConsentStatus.PENDING:
                recipient_set_consent(
                    recipient=person,
                    status=consent,
                    channel=ConsentEvent.Channel.ADMIN,
                    actor=admin,
                    evidence="Demo data",
                )
            recipient_list_add_members(recipient_list=demo_list, recipient_ids=[person.pk])
        if not InboundMessage.objects.filter(to=DEMO_NUMBER).exists():
            # A question in the inbox, through the same path a provider's webhook takes, so the
            # inbox and its reply can be tried without a real number.
            inbound_handle(
                inbound=InboundSMS(
                    provider=sender.provider, sender=DEMO_PEOPLE[0][0], to=DEMO_NUMBER, text=DEMO_QUESTION
                )
            )
        if not Campaign.objects.filter(name=DEMO_CAMPAIGN).exists():
            campaign = Campaign.objects.create(
                name=DEMO_CAMPAIGN,
                body='Hi {{ first_name|default:"there" }}, welcome to smsportal!',
                add_stop_footer=True,
                created_by=admin,
            )
            campaign.lists.set([demo_list])
            campaign.senders.set([sender])
            self.stdout.write(f"Demo campaign {campaign.pk} created (draft).")
        draft = Campaign.objects.filter(name=DEMO_CAMPAIGN, status=Campaign.Status.DRAFT).first()
        if launch and draft is not None:
            campaign_launch(campaign=draft, user=admin)
            self.stdout.write(f"Demo campaign launched: watch it at /campaigns/{draft.pk} or in /admin/.")
