"""Web pages: who may see and change what, list management, web import with progress, exports."""

from __future__ import annotations

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils.html import escape

from recipients.models import ConsentEvent, ImportJob, InboundMessage, Membership, Recipient, RecipientList

pytestmark = pytest.mark.django_db


@pytest.fixture
def customers(make_recipients):
    recipient_list = RecipientList.objects.create(name="customers")
    make_recipients(3, recipient_list=recipient_list)
    make_recipients(2, recipient_list=recipient_list, consent="pending")
    make_recipients(1, recipient_list=recipient_list, consent="opted_out")
    return recipient_list


def login(client, user):
    client.force_login(user)
    return client


def read_csv(response) -> list[list[str]]:
    assert response.streaming
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


def _urls(customers):
    person = customers.members.first()
    job = ImportJob.objects.create(recipient_list=customers, file="/nonexistent", original_name="x.csv")
    read = [
        reverse("recipients:list_index"),
        reverse("recipients:list_detail", args=[customers.pk]),
        reverse("recipients:list_export", args=[customers.pk]),
        reverse("recipients:consent_export"),
        reverse("recipients:import_detail", args=[job.pk]),
        reverse("recipients:import_errors_csv", args=[job.pk]),
        reverse("recipients:recipient_detail", args=[person.pk]),
        reverse("recipients:inbox"),
    ]
    write = [
        (reverse("recipients:list_create"), {"name": "new"}),
        (reverse("recipients:list_rename", args=[customers.pk]), {"name": "renamed"}),
        (reverse("recipients:list_archive", args=[customers.pk]), {"archived": "1"}),
        (reverse("recipients:list_add_member", args=[customers.pk]), {"phone": "4155559999"}),
        (reverse("recipients:list_remove_member", args=[customers.pk, person.pk]), {}),
        (reverse("recipients:list_import", args=[customers.pk]), {}),
        (reverse("recipients:recipient_opt_out", args=[person.pk]), {}),
        (reverse("recipients:recipient_confirm", args=[person.pk]), {}),
    ]
    return read, write


def test_anonymous_people_are_sent_to_sign_in(client, customers):
    read, write = _urls(customers)
    for url in read + [u for u, _ in write]:
        response = client.get(url) if url in read else client.post(url)
        assert response.status_code == 302 and "/login" in response["Location"], url


def test_viewers_can_read_everything_and_change_nothing(client, carol, customers):
    login(client, carol)
    read, write = _urls(customers)
    for url in read:
        assert client.get(url).status_code == 200, url
    for url, data in write:
        assert client.post(url, data).status_code == 403, url
    customers.refresh_from_db()
    assert customers.name == "customers" and not customers.is_archived
    assert Membership.objects.filter(recipient_list=customers).count() == 6
    assert not ConsentEvent.objects.exists()


def test_writes_are_post_only(client, bob, customers):
    login(client, bob)
    _, write = _urls(customers)
    for url, _ in write:
        expected = 200 if url.endswith("/import/") else 405  # the import page: GET shows its upload form
        assert client.get(url).status_code == expected, url


def test_the_list_index_shows_counts_per_consent_status(client, carol, customers):
    response = login(client, carol).get(reverse("recipients:list_index"))
    (row,) = response.context["lists"]
    assert (row.member_count, row.opted_in_count, row.pending_count, row.opted_out_count) == (6, 3, 2, 1)
    detail = client.get(reverse("recipients:list_detail", args=[customers.pk]))
    assert detail.context["counts"] == {"opted_in": 3, "pending": 2, "opted_out": 1, "total": 6}
    filtered = client.get(reverse("recipients:list_detail", args=[customers.pk]), {"consent": "pending"})
    assert len(filtered.context["page"].object_list) == 2


def test_senders_manage_lists(client, bob, customers):
    login(client, bob)
    response = client.post(reverse("recipients:list_create"), {"name": "VIP"})
    vip = RecipientList.objects.get(name="VIP")
    assert response["Location"] == reverse("recipients:list_detail", args=[vip.pk])
    duplicate = client.post(reverse("recipients:list_create"), {"name": "vip"})
    assert duplicate.status_code == 400 and "already exists" in duplicate.content.decode()

    client.post(reverse("recipients:list_rename", args=[vip.pk]), {"name": "Very important"})
    client.post(reverse("recipients:list_archive", args=[vip.pk]), {"archived": "1"})
    vip.refresh_from_db()
    assert (vip.name, vip.is_archived) == ("Very important", True)

    # One person in two lists.
    person = customers.members.first()
    client.post(reverse("recipients:list_add_member", args=[vip.pk]), {"phone": person.phone})
    client.post(reverse("recipients:list_add_member", args=[vip.pk]), {"phone": "(415) 555-9999", "first_name": "N"})
    assert set(vip.members.values_list("phone", flat=True)) == {person.phone, "+14155559999"}
    assert person.lists.count() == 2
    new = Recipient.objects.get(phone="+14155559999")
    assert new.consent_status == "pending"  # adding by hand never opts in

    bad = client.post(reverse("recipients:list_add_member", args=[vip.pk]), {"phone": "12"}, follow=True)
    assert "not a valid phone number" in bad.content.decode() or "not a phone number" in bad.content.decode()

    client.post(reverse("recipients:list_remove_member", args=[vip.pk, person.pk]))
    assert list(vip.members.all()) == [new]
    assert Recipient.objects.filter(pk=person.pk).exists()


def test_web_import_runs_in_a_task_and_shows_progress_and_rejected_rows(
    client, bob, customers, settings, tmp_path, django_capture_on_commit_callbacks
):
    settings.MEDIA_ROOT = tmp_path
    login(client, bob)
    upload = SimpleUploadedFile("new people.csv", b"phone,first_name\n4155550111,Ann\nnope,Bob\n", "text/csv")
    response = client.post(reverse("recipients:list_import", args=[customers.pk]), {"file": upload})
    job = ImportJob.objects.get()
    assert job.file.startswith(str(tmp_path / "imports"))
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(response["Location"], {"col_0": "phone", "col_1": "first_name", "run": ""})
    job.refresh_from_db()
    assert response["Location"] == reverse("recipients:import_detail", args=[job.pk])
    assert job.status == "completed" and job.created_by == bob and job.original_name == "new people.csv"
    assert customers.members.filter(phone="+14155550111").exists()

    page = client.get(response["Location"])
    assert page.status_code == 200 and "<td>3</td>" in page.content.decode()
    assert "not a phone number" in page.content.decode()
    partial = client.get(response["Location"], headers={"HX-Request": "true"})
    assert partial.templates[0].name == "recipients/_import_progress.html"
    assert "hx-trigger" not in partial.content.decode()  # finished: polling stops

    rows = read_csv(client.get(reverse("recipients:import_errors_csv", args=[job.pk])))
    assert rows == [["row", "phone", "reason", "raw"], ["3", "nope", rows[1][2], "nope,Bob"]]


def test_a_running_import_polls_for_progress(client, carol, customers):
    job = ImportJob.objects.create(
        recipient_list=customers, file="/x", status="running", total_bytes=1000, processed_bytes=400
    )
    response = login(client, carol).get(reverse("recipients:import_detail", args=[job.pk]), headers={"HX-Request": "1"})
    body = response.content.decode()
    assert 'hx-trigger="every 1s"' in body and 'value="40"' in body


def test_a_bad_upload_is_a_form_error_not_a_500(client, bob, customers, settings):
    settings.SMS_IMPORT_MAX_UPLOAD_MB = 1
    login(client, bob)
    response = client.post(reverse("recipients:list_import", args=[customers.pk]), {}, follow=True)
    assert response.status_code == 400 and "This field is required" in response.content.decode()
    big = SimpleUploadedFile("big.csv", b"phone\n" + b"4155550111\n" * 120_000, "text/csv")
    response = client.post(reverse("recipients:list_import", args=[customers.pk]), {"file": big}, follow=True)
    assert response.status_code == 413 and "larger than 1 MB" in response.content.decode()
    upload = SimpleUploadedFile("a.csv", b"phone\n1\n", "text/csv")
    response = client.post(
        reverse("recipients:list_import", args=[customers.pk]), {"file": upload, "region": "ZZ"}, follow=True
    )
    assert "Unknown region" in response.content.decode()
    assert not ImportJob.objects.exists()


def test_list_export_streams_members_with_attributes(client, carol, customers):
    person = customers.members.first()
    person.attributes = {"city": "=HYPERLINK(1)"}
    person.save()
    rows = read_csv(login(client, carol).get(reverse("recipients:list_export", args=[customers.pk])))
    assert rows[0] == ["phone", "first_name", "last_name", "consent_status", "opted_in_at", "opted_out_at", "city"]
    assert len(rows) == 7
    mine = next(r for r in rows if r[0] == person.phone)
    assert mine[6] == "'=HYPERLINK(1)"  # no formula injection into spreadsheets


def test_consent_history_export(client, bob, carol, customers, make_recipients):
    person = customers.members.filter(consent_status="opted_in").first()
    login(client, bob).post(reverse("recipients:recipient_opt_out", args=[person.pk]), {"reason": "asked by phone"})
    (outsider,) = make_recipients(1)
    from recipients.services import recipient_opt_out

    recipient_opt_out(recipient=outsider, channel="admin", evidence="x")
    rows = read_csv(login(client, carol).get(reverse("recipients:consent_export")))
    assert rows[0] == ["time", "phone", "from_status", "to_status", "channel", "actor", "evidence"]
    assert [r[1:6] for r in rows[1:]] == [
        [person.phone, "opted_in", "opted_out", "web", "bob"],
        [outsider.phone, "opted_in", "opted_out", "admin", ""],
    ]
    assert rows[1][6] == "asked by phone"
    only_list = read_csv(client.get(reverse("recipients:consent_export"), {"list": customers.pk}))
    assert [r[1] for r in only_list[1:]] == [person.phone]


def test_recipient_page_shows_history_and_sends_a_confirmation(
    client, bob, make_sender, make_recipients, django_capture_on_commit_callbacks
):
    (person,) = make_recipients(1, consent="pending")
    mine = make_sender(bob, number="+14155550100")
    login(client, bob)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("recipients:recipient_confirm", args=[person.pk]), {"sender": str(mine.pk)})
    from messaging.models import Message

    message = Message.objects.get(kind="confirmation")
    assert (message.to, message.sender) == (person.phone, "+14155550100")
    page = client.get(reverse("recipients:recipient_detail", args=[person.pk]))
    assert "confirmation requested" in page.content.decode()


def test_a_sender_cannot_confirm_from_someone_elses_number(client, alice, bob, make_sender, make_recipients):
    (person,) = make_recipients(1, consent="pending")
    theirs = make_sender(alice, number="+14155550100")
    login(client, bob).post(reverse("recipients:recipient_confirm", args=[person.pk]), {"sender": str(theirs.pk)})
    from messaging.models import Message

    assert not Message.objects.exists()


def inbound(text: str, *, sender: str = "+14155552671", kind: str = "message", **fields) -> InboundMessage:
    return InboundMessage.objects.create(
        provider="plivo", sender=sender, to="+14155550100", text=text, kind=kind, **fields
    )


def test_inbox_lists_newest_first_searches_and_filters_by_kind(client, carol):
    inbound("first hello", sender="+14155551111")
    inbound("second thanks", sender="+14155552222")
    inbound("STOP", sender="+14155552222", kind="opt_out")
    login(client, carol)
    page = client.get("/inbox").content.decode()
    assert page.index("STOP") < page.index("second thanks") < page.index("first hello")
    page = client.get("/inbox", {"q": "2222"}).content.decode()
    assert "second thanks" in page and "STOP" in page and "first hello" not in page
    page = client.get("/inbox", {"q": "HELLO"}).content.decode()
    assert "first hello" in page and "second thanks" not in page
    only = client.get("/inbox", {"kind": "opt_out"})
    assert [m.text for m in only.context["rows"]] == ["STOP"]
    both = client.get("/inbox", {"kind": "message", "q": "2222"})
    assert [m.text for m in both.context["rows"]] == ["second thanks"]


def test_inbox_shows_an_inbound_mms_with_its_media(client, carol):
    inbound(
        "look at this",
        media_urls=["https://media.example/cat.jpg", "https://media.example/clip.mp4", "javascript:alert(1)"],
    )
    page = login(client, carol).get("/inbox").content.decode()
    assert 'href="https://media.example/cat.jpg"' in page and ">Attachment 1</a>" in page
    assert 'href="https://media.example/clip.mp4"' in page and ">Attachment 2</a>" in page
    assert "javascript:" not in page  # only http(s) media become links


def test_inbox_pages_by_keyset_and_keeps_the_filters(client, carol):
    for i in range(52):
        inbound(f"hello {i}")
    inbound("STOP", kind="opt_out")
    login(client, carol)
    first = client.get("/inbox", {"q": "hello", "kind": "message"})
    assert [m.text for m in first.context["rows"]][:2] == ["hello 51", "hello 50"]
    assert len(first.context["rows"]) == 50 and first.context["newest_url"] is None
    next_url = first.context["next_url"]
    assert (
        "q=hello" in next_url and "kind=message" in next_url and f'href="{escape(next_url)}"' in first.content.decode()
    )
    second = client.get("/inbox" + next_url)
    assert [m.text for m in second.context["rows"]] == ["hello 1", "hello 0"]
    assert second.context["next_url"] is None and second.context["newest_url"] == "?q=hello&kind=message"


def test_inbox_links_known_senders_to_their_recipient_page(client, carol, make_recipients):
    (person,) = make_recipients(1)
    inbound("hi", sender=person.phone, recipient=person)
    page = login(client, carol).get(reverse("recipients:inbox")).content.decode()
    assert reverse("recipients:recipient_detail", args=[person.pk]) in page


@pytest.mark.parametrize("value", ["99999999999999999999999999", "-1", "abc"])
def test_garbage_paging_values_are_ignored(client, carol, value):
    inbound("hi")
    response = login(client, carol).get(reverse("recipients:inbox"), {"before": value})
    assert response.status_code == 200 and len(response.context["rows"]) == 1


def test_the_inbox_is_at_inbox_and_its_old_address_redirects_permanently(client, carol):
    assert reverse("recipients:inbox") == "/inbox"
    login(client, carol)
    response = client.get("/recipients/inbox/", {"q": "hello", "kind": "message"})
    assert response.status_code == 301
    assert response["Location"] == "/inbox?q=hello&kind=message"
    assert client.get("/recipients/inbox/", follow=True).status_code == 200


def test_one_inbox_in_the_navigation(client, carol):
    page = login(client, carol).get(reverse("recipients:list_index")).content.decode()
    assert page.count(">Inbox</a>") == 1 and 'href="/inbox"' in page
    assert "/recipients/inbox/" not in page


def test_missing_objects_are_404(client, carol):
    login(client, carol)
    assert client.get(reverse("recipients:list_detail", args=[999])).status_code == 404
    assert client.get(reverse("recipients:consent_export"), {"list": "999"}).status_code == 404


@pytest.mark.parametrize("guess", ["/recipients/", "/lists/"])
def test_guessed_addresses_for_the_lists_redirect_permanently(client, carol, guess):
    response = login(client, carol).get(guess)
    assert response.status_code == 301 and response["Location"] == "/recipients/lists/"
    assert client.get(guess, follow=True).status_code == 200


def test_a_sender_uses_a_shared_list_but_only_its_creator_or_an_admin_manages_it(client, alice, bob):
    shared = RecipientList.objects.create(name="Everyone", created_by=alice)  # an admin's: shared
    client.force_login(bob)
    page = client.get(reverse("recipients:list_detail", args=[shared.pk])).content.decode()
    assert "Rename" not in page and "its creator or an admin renames or archives it" in page
    assert client.post(reverse("recipients:list_rename", args=[shared.pk]), {"name": "pwned"}).status_code == 403
    assert client.post(reverse("recipients:list_archive", args=[shared.pk]), {"archived": "1"}).status_code == 403
    shared.refresh_from_db()
    assert (shared.name, shared.is_archived) == ("Everyone", False)
    # Using it is still theirs: adding a number.
    added = client.post(reverse("recipients:list_add_member", args=[shared.pk]), {"phone": "+14155550199"})
    assert added.status_code == 302 and shared.memberships.count() == 1
