"""The OpenAPI schema matches the implementation: schemathesis fuzzes every /api/v1 operation.

That is the api app's resources plus the relay's and accounts' endpoints. Bounded:
a handful of examples per operation, against Django's WSGI app in this process,
authenticated with a real API token of an admin who holds a sender number.
"""

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def _load():
    document = SchemaGenerator().get_schema(request=None, public=True)
    loaded = schemathesis.openapi.from_dict(schemathesis_safe(document))
    loaded.app = get_wsgi_application()
    return loaded.include(path_regex=r"^/api/v1/")


def schemathesis_safe(document):
    """Round-trip through JSON: spectacular returns lazy strings and OrderedDicts."""
    import json

    from rest_framework.utils.encoders import JSONEncoder

    return json.loads(json.dumps(document, cls=JSONEncoder))


schema = _load()


def test_every_api_operation_is_fuzzed():
    """A new endpoint under /api/v1 is in the contract test without anyone adding it."""
    paths = {result.ok().path for result in schema.get_all_operations()}
    assert {"/api/v1/accounts/me", "/api/v1/relay/conversations", "/api/v1/relay/numbers/{id}"} <= paths
    assert "/api/v1/messages/send" in paths


@pytest.fixture
def fuzz_token(db, settings, tmp_path, make_user, make_sender, make_recipients, make_campaign):
    settings.MEDIA_ROOT = tmp_path  # fuzzed CSV imports save their uploads here
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"token": "100000/min"},
    }
    from accounts.services import api_token_create

    admin = make_user("fuzz", role="admin")
    sender = make_sender(admin, number="+14155550100")
    make_recipients(3, recipient_list="fuzz")
    make_campaign(admin, lists=["fuzz"], senders=[sender])
    # A relay pool with one open conversation, so relay operations get past "not found" sometimes.
    from relay.models import RelayNumber
    from relay.services import conversation_create

    for i in range(4):
        RelayNumber.objects.create(number=f"+1415555{200 + i:04d}", label=f"fuzz {i}")
    conversation_create(participant_a="+14152000001", participant_b="+14152000002", created_by=admin)
    _, raw = api_token_create(actor=admin, user=admin, name="fuzz")
    # Like Django's test client: keep the test's transaction open across the WSGI calls.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield raw
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


def test_the_schema_endpoint_and_docs_page_are_served(client, db, settings):
    settings.API_DOCS_PUBLIC = True
    schema_response = client.get("/api/schema/")
    assert schema_response.status_code == 200
    assert b"/api/v1/messages/send" in schema_response.content
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert b"swagger-ui" in docs.content


def test_schema_and_docs_need_a_sign_in_unless_the_setting_makes_them_public(client, db, settings, make_user):
    settings.API_DOCS_PUBLIC = False
    assert client.get("/api/schema/").status_code in {401, 403}
    assert client.get("/api/docs/").status_code in {401, 403}

    client.force_login(make_user("reader", role="viewer"))
    assert client.get("/api/schema/").status_code == 200
    assert client.get("/api/docs/").status_code == 200


@schema.parametrize()
@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_api_conforms_to_its_schema(case, fuzz_token):
    response = case.call(headers={"Authorization": f"Bearer {fuzz_token}"})
    case.validate_response(response, checks=CHECKS)
