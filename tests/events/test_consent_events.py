"""Set-based consent changes (imports, bulk upserts, suppressed numbers) send their recipient events."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from events.models import OutboxEvent
from events.services import endpoint_create
from recipients.models import Recipient, RecipientList, Suppression, suppression_key
from recipients.services import import_csv

pytestmark = pytest.mark.usefixtures("fast_retries")


@pytest.fixture
def endpoint(alice, receiver):
    return endpoint_create(actor=alice, url=receiver.url, event_types=["recipient.opted_in", "recipient.opted_out"])


def consent_events() -> dict[str, tuple[str, str, str]]:
    return {
        e.payload["data"]["phone"]: (e.event_type, e.payload["data"]["from_status"], e.payload["data"]["channel"])
        for e in OutboxEvent.objects.all()
    }


def test_an_import_sends_one_event_per_consent_that_moved_and_none_for_the_rest(
    endpoint, receiver, alice, tmp_path, django_capture_on_commit_callbacks
):
    Recipient.objects.create(phone="+14155552671", consent_status="pending")  # -> opted_in
    Recipient.objects.create(phone="+14155552672", consent_status="opted_in")  # -> opted_out
    Recipient.objects.create(phone="+14155552673", consent_status="opted_in")  # stays opted_in
    Recipient.objects.create(phone="+14155552674", consent_status="opted_out")  # kept opted out
    Recipient.objects.create(phone="+14155552675", consent_status="opted_in")  # no consent stated
    Suppression.objects.create(phone_hash=suppression_key("+14155552678"), evidence="STOP")  # comes back opted out
    csv = tmp_path / "people.csv"
    csv.write_text(
        "phone,consent,consent_evidence,consent_at\n"
        "4155552671,yes,form,2024-05-01\n4155552672,no,,\n4155552673,yes,form,2024-05-01\n"
        "4155552674,yes,form,2024-05-01\n4155552675,,,\n"
        "4155552676,yes,form,2024-05-01\n4155552677,,,\n4155552678,yes,form,2024-05-01\n4155552679,no,,\n"
    )
    with django_capture_on_commit_callbacks(execute=True):
        job = import_csv(path=csv, recipient_list=RecipientList.objects.create(name="imported"), user=alice)
    assert job.status == "completed" and job.consent_changes == 5
    assert consent_events() == {
        "+14155552671": ("recipient.opted_in", "pending", "import"),
        "+14155552672": ("recipient.opted_out", "opted_in", "import"),
        "+14155552676": ("recipient.opted_in", "pending", "import"),  # new, with its stated consent
        "+14155552678": ("recipient.opted_out", "pending", "import"),  # suppressed number re-created
        "+14155552679": ("recipient.opted_out", "pending", "import"),
    }
    ids = dict(Recipient.objects.values_list("phone", "pk"))
    delivered = {e["data"]["phone"]: (e["type"], e["data"]["id"]) for e in receiver.accepted()}
    assert delivered == {phone: (kind, ids[phone]) for phone, (kind, _, _) in consent_events().items()}


def test_the_bulk_endpoint_sends_consent_events_with_one_statement_for_all_of_them(endpoint, bob, client_for):
    members = RecipientList.objects.create(name="bulk")
    rows = [
        {
            "phone": f"+1415555{2600 + i}",
            "consent": "opted_in",
            "evidence": {"source": "form", "collected_at": "2024-05-01T10:00:00Z", "text": "yes"},
        }
        for i in range(20)
    ]
    Recipient.objects.create(phone=rows[0]["phone"], consent_status="opted_in")  # unchanged: no event
    api = client_for(bob)
    with CaptureQueriesContext(connection) as queries:
        response = api.post("/api/v1/recipients/bulk", {"list": members.pk, "recipients": rows}, format="json")
    assert sum("INSERT INTO events_outboxevent" in q["sql"] for q in queries.captured_queries) == 1
    assert response.status_code == 200 and response.json()["created"] == 19, response.content
    assert OutboxEvent.objects.filter(event_type="recipient.opted_in").count() == 19
    assert rows[0]["phone"] not in consent_events()
    assert {v[2] for v in consent_events().values()} == {"api"}
    # The same upsert again moves nothing and so sends nothing.
    api.post("/api/v1/recipients/bulk", {"list": members.pk, "recipients": rows}, format="json")
    assert OutboxEvent.objects.count() == 19
