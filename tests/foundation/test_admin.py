"""Django admin covers every model of the project, and its pages render for an admin."""

import pytest
from django.apps import apps
from django.contrib import admin
from django.urls import reverse

PROJECT_APPS = {"accounts", "recipients", "campaigns", "providers", "relay", "api"}


def _models():
    return [m for m in apps.get_models() if m._meta.app_label in PROJECT_APPS]


def test_every_project_model_is_in_django_admin():
    missing = [m._meta.label for m in _models() if m not in admin.site._registry]
    assert missing == []


@pytest.mark.parametrize("model", _models(), ids=lambda m: m._meta.label)
def test_admin_changelists_render(client, alice, model):
    alice.is_staff = alice.is_superuser = True
    alice.save()
    client.force_login(alice)
    response = client.get(reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist"))
    assert response.status_code == 200


def test_admin_is_closed_to_non_staff(client, bob):
    client.force_login(bob)
    response = client.get(reverse("admin:campaigns_campaign_changelist"))
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


# Rows only the system writes: the admin shows them, nobody adds, edits or deletes them by hand.
SYSTEM_OWNED = {
    "campaigns.CampaignCounter": {"add", "change", "delete"},
    "campaigns.CampaignEvent": {"add", "change", "delete"},
    "campaigns.ShortLink": {"add", "change", "delete"},
    "providers.ProviderEvent": {"add", "change", "delete"},
    "messaging.Message": {"add", "change", "delete"},
    "recipients.ConsentEvent": {"add", "change", "delete"},
    "relay.RelayMessage": {"add", "change"},
}


@pytest.mark.parametrize("label", sorted(SYSTEM_OWNED))
def test_system_owned_rows_are_read_only_in_admin(rf, alice, label):
    alice.is_staff = alice.is_superuser = True
    alice.save()
    request = rf.get("/admin/")
    request.user = alice
    model_admin = admin.site._registry[apps.get_model(label)]
    allowed = {
        "add": model_admin.has_add_permission(request),
        "change": model_admin.has_change_permission(request),
        "delete": model_admin.has_delete_permission(request),
    }
    assert {k for k, v in allowed.items() if v} == {"add", "change", "delete"} - SYSTEM_OWNED[label]


def test_a_campaign_with_messages_can_still_be_deleted_in_admin(client, alice, bob, make_recipients, make_campaign):
    """Its messages, counters and log go with it; their read-only admins must not block the delete."""
    from campaigns.models import Campaign, CampaignCounter, CampaignEvent
    from messaging.models import Message

    alice.is_staff = alice.is_superuser = True
    alice.save()
    recipient = make_recipients(1, recipient_list="customers")[0]
    campaign = make_campaign(bob, lists=["customers"], name="Old one")
    Message.objects.create(campaign=campaign, recipient=recipient, to=recipient.phone, body="hi")
    CampaignCounter.objects.create(campaign=campaign, bucket="queued", count=1)
    CampaignEvent.objects.create(campaign=campaign, kind="launched")
    client.force_login(alice)
    url = reverse("admin:campaigns_campaign_delete", args=[campaign.pk])
    assert "Cannot delete" not in client.get(url).content.decode()
    assert client.post(url, {"post": "yes"}).status_code == 302
    assert not Campaign.objects.filter(pk=campaign.pk).exists()
    assert not Message.objects.filter(campaign_id=campaign.pk).exists()
