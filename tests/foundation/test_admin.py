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
