"""Password guessing is limited the same way on the main sign-in page and on /admin/login/."""

from __future__ import annotations

import pytest

ADMIN_LOGIN = "/admin/login/?next=/admin/"


@pytest.fixture
def root(make_user):
    return make_user("root", role="admin", is_staff=True, is_superuser=True)


def admin_login(client, password: str):
    return client.post(ADMIN_LOGIN, {"username": "root", "password": password, "next": "/admin/"})


def test_admin_login_refuses_the_right_password_after_40_wrong_ones(client, root):
    statuses = {admin_login(client, f"guess-{i}").status_code for i in range(40)}
    assert statuses == {200}

    response = admin_login(client, "pw-root")

    assert response.status_code == 200
    assert "Too many failed login attempts" in response.content.decode()
    assert "_auth_user_id" not in client.session
    assert client.get("/admin/").status_code == 302  # still sent to the sign-in page


def test_admin_login_still_works_below_the_limit(client, root):
    for i in range(3):
        admin_login(client, f"guess-{i}")
    response = admin_login(client, "pw-root")
    assert response.status_code == 302 and response["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200


def test_failures_on_the_main_page_count_for_the_admin_page(client, root):
    """One rule, one set of counters: switching pages does not reset the guesses."""
    for i in range(5):
        client.post("/accounts/login/", {"login": "root", "password": f"guess-{i}"})
    response = admin_login(client, "pw-root")
    assert "Too many failed login attempts" in response.content.decode()
    assert "_auth_user_id" not in client.session
