"""The error shape, malformed input, unknown ids, and per-token throttling."""

import pytest
from rest_framework.settings import api_settings


def test_malformed_json_is_a_400_with_a_message(bob, client_for):
    response = client_for(bob).post("/api/v1/lists", "{not json", content_type="application/json")
    assert response.status_code == 400
    body = response.json()
    assert body["message"].startswith("JSON parse error")
    assert body["errors"] == {}


def test_wrong_types_are_field_errors(bob, client_for):
    response = client_for(bob).post("/api/v1/lists", {"name": ["x"], "is_archived": "maybe"}, format="json")
    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"name", "is_archived"}


def test_a_json_array_body_is_a_400(bob, client_for):
    response = client_for(bob).post("/api/v1/lists", [1, 2], format="json")
    assert response.status_code == 400
    assert response.json()["errors"]["non_field_errors"]


@pytest.mark.parametrize(
    "path", ["/api/v1/lists/999", "/api/v1/campaigns/99999999999999999999", "/api/v1/recipients/0"]
)
def test_unknown_ids_are_json_404(bob, client_for, path):
    response = client_for(bob).get(path)
    assert response.status_code == 404
    assert response.json() == {"message": "Not found.", "errors": {}}


def test_a_bad_filter_value_is_a_400(bob, client_for):
    response = client_for(bob).get("/api/v1/messages", {"status": "bogus", "campaign": "x"})
    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"status", "campaign"}


def test_an_invalid_cursor_is_a_404_not_a_500(bob, client_for):
    response = client_for(bob).get("/api/v1/messages", {"cursor": "garbage"})
    assert response.status_code == 404
    assert response.json()["message"] == "Invalid cursor"


def test_nul_characters_are_refused_not_crashing(bob, client_for):
    response = client_for(bob).post(
        "/api/v1/recipients", {"phone": "+14155552671", "attributes": {"a": "x\u0000y"}}, format="json"
    )
    assert response.status_code == 400


@pytest.fixture
def low_rate(settings):
    rates = dict(settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"])
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {**rates, "token": "3/min"}}
    assert api_settings.DEFAULT_THROTTLE_RATES["token"] == "3/min"
    yield


def test_throttling_answers_429_with_retry_after(bob, low_rate, token_client):
    client = token_client(bob)
    statuses = [client.get("/api/v1/lists").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    response = client.get("/api/v1/lists")
    assert response.status_code == 429
    assert 0 < int(response["Retry-After"]) <= 60
    assert "throttled" in response.json()["message"].lower()


def test_throttling_is_per_token(bob, low_rate, token_client):
    first, second = token_client(bob), token_client(bob)
    for _ in range(3):
        assert first.get("/api/v1/lists").status_code == 200
    assert first.get("/api/v1/lists").status_code == 429
    assert second.get("/api/v1/lists").status_code == 200
