"""The error shape, malformed input, unknown ids, and throttling per token and per user."""

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


def _rates(settings, **rates):
    current = dict(settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"])
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {**current, **rates}}


def test_throttling_is_per_user_across_tokens_and_sessions(bob, dave, settings, token_client, client_for):
    """More tokens do not buy more requests: the person's own limit holds over all of them."""
    _rates(settings, token="100/min", user="5/min")
    tokens = [token_client(bob) for _ in range(3)]
    session = client_for(bob)
    statuses = [c.get("/api/v1/lists").status_code for c in [*tokens, session, tokens[0]]]
    assert statuses == [200] * 5
    assert [c.get("/api/v1/lists").status_code for c in [*tokens, session]] == [429] * 4
    assert token_client(dave).get("/api/v1/lists").status_code == 200  # someone else is not affected


def test_a_refused_request_does_not_use_up_the_other_buckets(bob, settings, token_client):
    _rates(settings, token="2/min", user="3/min")
    first, second = token_client(bob), token_client(bob)
    assert [first.get("/api/v1/lists").status_code for _ in range(4)] == [200, 200, 429, 429]
    assert second.get("/api/v1/lists").status_code == 200  # the user bucket counted only first's two


def test_parallel_requests_never_pass_more_than_the_limit(bob, live_server, settings, transactional_db):
    """16 clients at once on a threaded server: the check and the count are one atomic step."""
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    from accounts.services import api_token_create

    _rates(settings, token="30/min", user="1000/min")
    _, raw = api_token_create(actor=bob, user=bob, name="parallel")
    headers = {"Authorization": f"Bearer {raw}"}

    def burst(_: int) -> list[int]:
        with httpx.Client(base_url=live_server.url, headers=headers, timeout=30) as http:
            return [http.get("/api/v1/lists").status_code for _ in range(5)]

    with ThreadPoolExecutor(16) as pool:
        statuses = [s for batch in pool.map(burst, range(16)) for s in batch]

    assert len(statuses) == 80
    assert statuses.count(200) == 30
    assert statuses.count(429) == 50
