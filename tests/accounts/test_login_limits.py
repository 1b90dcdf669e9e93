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


def test_the_limit_is_per_account_so_its_email_does_not_reopen_it(client, root):
    """5 wrong passwords for "root" (each from its own address, below the per-address limit), then the
    right one typed as root's email address, on either page: still refused."""
    for i in range(5):
        client.post(ADMIN_LOGIN, {"username": "root", "password": f"guess-{i}"}, REMOTE_ADDR=f"10.0.0.{i + 1}")

    admin = client.post(ADMIN_LOGIN, {"username": "ROOT@example.com", "password": "pw-root"}, REMOTE_ADDR="10.0.1.1")
    main = client.post("/accounts/login/", {"login": "root@example.com", "password": "pw-root"}, REMOTE_ADDR="10.0.1.2")

    assert "Too many failed login attempts" in admin.content.decode()
    assert "Too many failed login attempts" in main.content.decode()
    assert "_auth_user_id" not in client.session


def test_behind_one_proxy_one_clients_guesses_do_not_lock_out_everyone(client, root, make_user, settings):
    """Behind Caddy every request comes from the proxy's address: the per-address limit must count the
    client's address from X-Forwarded-For, or one guesser blocks password sign-in for all."""
    settings.ALLAUTH_TRUSTED_PROXY_COUNT = 1
    make_user("dora", role="sender")
    for i in range(12):  # over the per-address limit, spread over accounts so no account is locked
        client.post(
            "/accounts/login/",
            {"login": f"nobody{i}", "password": "x"},
            REMOTE_ADDR="172.18.0.2",
            HTTP_X_FORWARDED_FOR="203.0.113.9",
        )
    guesser = client.post(
        "/accounts/login/", {"login": "dora", "password": "pw-dora"}, HTTP_X_FORWARDED_FOR="203.0.113.9"
    )
    assert "Too many failed login attempts" in guesser.content.decode()

    other = client.post(
        "/accounts/login/",
        {"login": "dora", "password": "pw-dora"},
        REMOTE_ADDR="172.18.0.2",
        HTTP_X_FORWARDED_FOR="198.51.100.7",
    )
    assert other.status_code == 302 and "_auth_user_id" in client.session
