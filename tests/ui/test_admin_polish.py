"""Django admin as a newcomer meets it: one Accounts section, readable labels, a favicon."""

from __future__ import annotations

import re

import pytest
from django.contrib.staticfiles import finders

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client, alice):
    alice.is_staff = alice.is_superuser = True
    alice.save()
    client.force_login(alice)
    return client


def test_the_admin_index_has_one_accounts_section_and_says_api_tokens(staff_client):
    page = staff_client.get("/admin/").content.decode()
    sections = re.findall(r'class="section"[^>]*>([^<]+)</a>', page)
    assert sections.count("Accounts") == 1, sections
    assert "Sign-in email addresses" in sections  # django-allauth's app, renamed (its tables are not)
    assert ">API tokens<" in page and "Api tokens" not in page


def test_allauth_keeps_its_app_label_and_tables():
    from allauth.account.models import EmailAddress

    assert EmailAddress._meta.app_label == "account"
    assert EmailAddress._meta.db_table == "account_emailaddress"


def test_favicon_ico_is_served(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 301
    assert response["Location"].endswith("/favicon.ico") and response["Location"] != "/favicon.ico"
    icon = finders.find("favicon.ico")
    assert icon and open(icon, "rb").read(4) == b"\x00\x00\x01\x00"  # an ICO file
    assert b"".join(client.get(response["Location"]).streaming_content)[:4] == b"\x00\x00\x01\x00"


def test_every_text_like_input_is_styled_full_width():
    css = open(finders.find("css/app.css")).read()
    rule = next(line for line in css.splitlines() if "input[type=text]" in line and line.endswith("{"))
    for kind in ("password", "email", "url", "tel", "number"):
        assert f"input[type={kind}]" in rule
