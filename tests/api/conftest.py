"""API test helpers: clients for each persona, and real API tokens."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient


@pytest.fixture
def client_for():
    """``client_for(user)``: an APIClient logged in as ``user`` (None: anonymous)."""

    def make(user=None) -> APIClient:
        client = APIClient()
        if user is not None:
            client.force_authenticate(user)
        return client

    return make


@pytest.fixture
def token_client(db):
    """``token_client(user)``: an APIClient sending a real API token in the Authorization header."""
    from accounts.services import api_token_create

    def make(user) -> APIClient:
        _, raw = api_token_create(actor=user, user=user, name="tests")
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
        return client

    return make


@pytest.fixture
def dave(make_user):
    """A second sender, who owns none of bob's things."""
    return make_user("dave", role="sender")
