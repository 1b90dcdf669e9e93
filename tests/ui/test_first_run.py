"""The dashboard's first-run panel: explains the demo that runportal seeds, until each person closes it."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.urls import reverse

from campaigns.models import Campaign
from recipients.models import RecipientList

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo():
    call_command("seed_demo", password="pw-admin", stdout=open("/dev/null", "w"))


def test_the_panel_explains_the_demo_list_campaign_sandbox_and_real_numbers(client, carol, demo, settings):
    settings.SMS_BACKEND = "providers.backends.sandbox.SMSBackend"
    client.force_login(carol)
    page = client.get(reverse("dashboard")).content.decode()
    assert 'data-testid="first-run"' in page
    demo_list = RecipientList.objects.get(name="Demo list")
    campaign = Campaign.objects.get(name="Welcome (demo)")
    assert reverse("recipients:list_detail", args=[demo_list.pk]) in page
    assert reverse("campaign_detail", args=[campaign.pk]) in page
    assert "Sending is simulated." in page and "<code>providers.backends.sandbox.SMSBackend</code>" in page
    assert "SMS_BACKEND=providers.backends.live.SMSBackend" in page
    assert "PLIVO_AUTH_ID" in page and "FLOWROUTE_ACCESS_KEY" in page
    assert "ask an admin to add the number as a sender" in page  # carol is a viewer


def test_an_admin_gets_a_link_to_add_the_sender(client, alice, demo):
    client.force_login(alice)
    page = client.get(reverse("dashboard")).content.decode()
    assert reverse("accounts:sender_create") in page


def test_closing_it_is_per_person_and_lasts(client, carol, bob, demo):
    client.force_login(carol)
    response = client.post(reverse("first_run_dismiss"))
    assert response.status_code == 302 and response["Location"] == reverse("dashboard")
    carol.refresh_from_db()
    assert carol.first_run_dismissed_at is not None
    assert 'data-testid="first-run"' not in client.get(reverse("dashboard")).content.decode()
    client.logout()
    client.force_login(carol)  # a new session: still closed
    assert 'data-testid="first-run"' not in client.get(reverse("dashboard")).content.decode()
    client.force_login(bob)
    assert 'data-testid="first-run"' in client.get(reverse("dashboard")).content.decode()


def test_no_panel_on_an_installation_without_the_demo(client, carol, settings):
    settings.SMS_BACKEND = "providers.backends.live.SMSBackend"
    client.force_login(carol)
    assert 'data-testid="first-run"' not in client.get(reverse("dashboard")).content.decode()


def test_closing_needs_post(client, carol, demo):
    client.force_login(carol)
    assert client.get(reverse("first_run_dismiss")).status_code == 405


def test_the_demo_has_a_question_in_the_inbox_to_try_a_reply_on(client, demo):
    """Newcomers could not try the inbox: the sandbox never receives texts. Seeding twice adds one."""
    from django.contrib.auth import get_user_model

    from campaigns.management.commands.seed_demo import DEMO_QUESTION
    from recipients.models import InboundMessage

    call_command("seed_demo", stdout=open("/dev/null", "w"))
    question = InboundMessage.objects.get()
    assert question.text == DEMO_QUESTION and question.recipient.first_name == "Ada"
    client.force_login(get_user_model().objects.get(username="admin"))
    page = client.get(reverse("recipients:inbox")).content.decode()
    assert DEMO_QUESTION in page
    assert reverse("recipients:inbox_reply", args=[question.pk]) in page


def test_seeding_again_with_the_same_password_keeps_the_admin_signed_in(client, demo):
    # runportal seeds at every start: restarting with the same --password must not end the admin's sessions.
    assert client.login(username="admin", password="pw-admin")
    assert client.get(reverse("dashboard")).status_code == 200
    call_command("seed_demo", password="pw-admin", stdout=open("/dev/null", "w"))
    assert client.get(reverse("dashboard")).status_code == 200
    call_command("seed_demo", password="pw-new", stdout=open("/dev/null", "w"))
    assert client.get(reverse("dashboard")).status_code == 302  # a new password does sign them out
    assert client.login(username="admin", password="pw-new")
