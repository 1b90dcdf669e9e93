"""Campaign pages and actions: who may see and do what, and what the pages show."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from campaigns.models import Campaign
from messaging.models import Message
from providers.backends import locmem


@pytest.fixture
def draft(bob, make_sender, make_recipients, make_campaign):
    make_recipients(3, recipient_list="customers")
    make_recipients(1, recipient_list="customers", consent="opted_out")
    return make_campaign(bob, lists=["customers"], senders=[make_sender(bob)], name="Draft one")


@pytest.fixture
def sending(draft):
    # A launched campaign whose rows were not created yet: pausable, nothing sent.
    Campaign.objects.filter(pk=draft.pk).update(status=Campaign.Status.SENDING)
    draft.refresh_from_db()
    return draft


def login(client, user):
    client.force_login(user)
    return client


READ_URLS = [
    ("dashboard", False),
    ("dashboard_running", False),
    ("campaign_list", False),
    ("campaign_detail", True),
    ("campaign_status", True),
]
ACTION_URLS = ["campaign_pause", "campaign_resume", "campaign_cancel", "campaign_retry_failed"]


def _url(name, campaign, with_pk):
    return reverse(name, args=[campaign.pk]) if with_pk else reverse(name)


@pytest.mark.parametrize(("name", "with_pk"), READ_URLS)
def test_anonymous_is_sent_to_login_for_pages(client, draft, name, with_pk):
    response = client.get(_url(name, draft, with_pk))
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize(
    "name", ["campaign_new", "campaign_edit", "campaign_confirm", "campaign_preview", *ACTION_URLS]
)
def test_anonymous_is_sent_to_login_for_writes(client, draft, name):
    url = reverse(name) if name in {"campaign_new", "campaign_preview"} else reverse(name, args=[draft.pk])
    response = client.post(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    draft.refresh_from_db()
    assert draft.status == Campaign.Status.DRAFT


@pytest.mark.parametrize(("name", "with_pk"), READ_URLS)
def test_every_role_can_read(client, carol, draft, name, with_pk):
    response = login(client, carol).get(_url(name, draft, with_pk))
    assert response.status_code == 200


def test_viewer_sees_no_buttons_and_cannot_compose(client, carol, sending):
    login(client, carol)
    page = client.get(reverse("campaign_detail", args=[sending.pk])).content.decode()
    assert "Pause</button>" not in page and "Cancel campaign" not in page
    assert client.get(reverse("campaign_new")).status_code == 403
    assert client.post(reverse("campaign_new"), {"name": "x"}).status_code == 403
    assert client.post(reverse("campaign_preview"), {"body": "hi"}).status_code == 403
    assert client.get(reverse("campaign_edit", args=[sending.pk])).status_code == 403
    assert client.post(reverse("campaign_confirm", args=[sending.pk])).status_code == 403
    assert "New campaign" not in client.get(reverse("dashboard")).content.decode()


@pytest.mark.parametrize("name", ACTION_URLS)
def test_viewer_actions_are_refused_server_side(client, carol, sending, name):
    response = login(client, carol).post(reverse(name, args=[sending.pk]))
    assert response.status_code == 403
    sending.refresh_from_db()
    assert sending.status == Campaign.Status.SENDING


def test_another_sender_cannot_touch_bobs_campaign(client, make_user, sending):
    """Another sender's campaign does not exist for dave, on the pages as in the API (issue 16, finding 7)."""
    dave = make_user("dave", role="sender")
    login(client, dave)
    assert client.post(reverse("campaign_pause", args=[sending.pk])).status_code == 404
    assert client.get(reverse("campaign_edit", args=[sending.pk])).status_code == 404
    assert client.get(reverse("campaign_detail", args=[sending.pk])).status_code == 404
    assert sending.name not in client.get(reverse("campaign_list")).content.decode()
    assert sending.name not in client.get(reverse("dashboard")).content.decode()
    sending.refresh_from_db()
    assert sending.status == Campaign.Status.SENDING


def test_actions_need_post(client, bob, sending):
    response = login(client, bob).get(reverse("campaign_pause", args=[sending.pk]))
    assert response.status_code == 405
    sending.refresh_from_db()
    assert sending.status == Campaign.Status.SENDING


def test_creator_pauses_and_resumes(client, bob, sending, django_capture_on_commit_callbacks):
    login(client, bob)
    page = client.get(reverse("campaign_detail", args=[sending.pk])).content.decode()
    assert "Pause</button>" in page and "Resume</button>" not in page
    response = client.post(reverse("campaign_pause", args=[sending.pk]), follow=True)
    assert "Campaign paused." in response.content.decode()
    sending.refresh_from_db()
    assert sending.status == Campaign.Status.PAUSED
    # Pausing twice is a clear message, not an error page.
    response = client.post(reverse("campaign_pause", args=[sending.pk]), follow=True)
    assert response.status_code == 200 and "cannot become paused" in response.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("campaign_resume", args=[sending.pk]))
    sending.refresh_from_db()
    assert sending.status in {Campaign.Status.SENDING, Campaign.Status.COMPLETED}
    assert len(locmem.outbox) == 3


def test_an_auto_paused_campaign_can_be_kept_paused_by_a_person(client, bob, sending):
    from campaigns.services import campaign_auto_pause

    campaign_auto_pause(campaign_id=sending.pk, reason="100% of recent sends failed (plivo)")
    login(client, bob)
    page = client.get(reverse("campaign_detail", args=[sending.pk])).content.decode()
    assert "Keep paused (no automatic resume)</button>" in page and "Resume</button>" in page
    response = client.post(reverse("campaign_pause", args=[sending.pk]), follow=True)
    assert "Campaign paused." in response.content.decode()
    sending.refresh_from_db()
    assert (sending.status, sending.auto_paused) == (Campaign.Status.PAUSED, False)  # beat's probe leaves it
    page = client.get(reverse("campaign_detail", args=[sending.pk])).content.decode()
    assert "btn-pause" not in page and "Resume</button>" in page


def test_admin_can_cancel_someone_elses_campaign(client, alice, sending):
    response = login(client, alice).post(reverse("campaign_cancel", args=[sending.pk]))
    assert response.status_code == 302
    sending.refresh_from_db()
    assert sending.status == Campaign.Status.CANCELLED


def test_composer_offers_only_own_active_senders_and_open_lists(client, bob, alice, make_sender, draft):
    from recipients.models import RecipientList

    make_sender(alice, number="+14155550199")
    make_sender(bob, number="+14155550177", is_active=False)
    RecipientList.objects.create(name="old list", is_archived=True)
    page = login(client, bob).get(reverse("campaign_new")).content.decode()
    assert "+14155550100" in page
    assert "+14155550199" not in page and "+14155550177" not in page
    assert "customers" in page and "old list" not in page


def _form(draft, sender, **overrides):
    data = {
        "name": "Spring",
        "senders": [sender.pk],
        "lists": [lst.pk for lst in draft.lists.all()],
        "body": "Hi {{ first_name }}",
        "media_urls": "",
        "add_stop_footer": "on",
        "smart_encoding": "on",
        "timezone": "America/New_York",
        "send_at": "",
        "valid_until": "",
        "send_window_start": "",
        "send_window_end": "",
    }
    data.update(overrides)
    return data


def test_compose_then_confirm_then_launch(client, bob, draft, django_capture_on_commit_callbacks):
    sender = draft.senders.get()
    login(client, bob)
    response = client.post(reverse("campaign_new"), _form(draft, sender, send_at="2030-01-02T09:30"))
    created = Campaign.objects.exclude(pk=draft.pk).get()
    assert response["Location"] == reverse("campaign_confirm", args=[created.pk])
    # 09:30 in New York in winter is 14:30 UTC.
    assert created.send_at.isoformat() == "2030-01-02T14:30:00+00:00"
    assert created.add_stop_footer and created.created_by == bob
    page = client.get(response["Location"]).content.decode()
    assert "<strong>3</strong> opted-in people" in page
    assert "Reply STOP to opt out" in page
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("campaign_confirm", args=[created.pk]), follow=True)
    assert "Campaign scheduled." in response.content.decode()
    created.refresh_from_db()
    assert created.status == Campaign.Status.SCHEDULED


def test_launch_now_sends(client, bob, draft, django_capture_on_commit_callbacks):
    login(client, bob)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("campaign_confirm", args=[draft.pk]), follow=True)
    assert "Campaign launched." in response.content.decode()
    assert Message.objects.filter(campaign=draft).count() == 3
    assert len(locmem.outbox) == 3


@pytest.mark.parametrize(
    ("overrides", "field", "text"),
    [
        ({"media_urls": "http://example.com/a.jpg"}, "media_urls", "must use https"),
        ({"lists": []}, "lists", "Choose at least one recipient list."),
        ({"senders": []}, "senders", "Choose at least one sender number."),
        ({"send_at": "not a date"}, "send_at", "Enter a valid date/time."),
        ({"send_window_start": "08:00"}, "send_window_end", "Give both ends"),
        ({"timezone": "Mars/Olympus"}, "timezone", "Select a valid choice"),
    ],
)
def test_bad_input_is_a_form_error(client, bob, draft, overrides, field, text):
    sender = draft.senders.get()
    response = login(client, bob).post(reverse("campaign_new"), _form(draft, sender, **overrides))
    assert response.status_code == 400
    assert text in str(response.context["form"].errors[field])
    assert 'role="alert"' in response.content.decode()
    assert Campaign.objects.count() == 1


def test_someone_elses_sender_is_refused(client, bob, alice, make_sender, draft):
    theirs = make_sender(alice, number="+14155550199")
    response = login(client, bob).post(reverse("campaign_new"), _form(draft, theirs))
    assert response.status_code == 400
    assert "senders" in response.context["form"].errors


def test_launch_problems_show_on_the_confirm_page(client, bob, draft):
    draft.body = "Hi {{ nickname }}"
    draft.save()
    login(client, bob)
    response = client.post(reverse("campaign_confirm", args=[draft.pk]))
    assert response.status_code == 400
    assert "cannot be launched yet" in response.content.decode()
    assert "nickname" in response.content.decode()
    draft.refresh_from_db()
    assert draft.status == Campaign.Status.DRAFT


@pytest.mark.parametrize(
    ("members", "reason"),
    [
        ({}, "The chosen lists are empty"),
        ({"opted_out": 2}, "All 2 members of the chosen lists have opted out"),
        ({"pending": 2}, "Nobody has opted in: none of the 2 members"),
    ],
)
def test_the_confirm_step_refuses_a_campaign_that_would_reach_nobody(
    client, bob, make_sender, make_recipients, make_campaign, members, reason
):
    from recipients.models import RecipientList

    lst = RecipientList.objects.create(name="nobody here")
    for consent, n in members.items():
        make_recipients(n, recipient_list=lst, consent=consent)
    campaign = make_campaign(bob, lists=[lst], senders=[make_sender(bob, number="+14155550188")])
    login(client, bob)
    page = client.get(reverse("campaign_confirm", args=[campaign.pk]))
    assert page.status_code == 200 and reason in page.content.decode()
    response = client.post(reverse("campaign_confirm", args=[campaign.pk]))
    assert response.status_code == 400
    assert "cannot be launched yet" in response.content.decode() and reason in response.content.decode()
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.DRAFT


def test_edit_only_while_draft(client, bob, sending):
    response = login(client, bob).get(reverse("campaign_edit", args=[sending.pk]), follow=True)
    assert "Only a draft can be edited." in response.content.decode()


def test_edit_draft_keeps_values(client, bob, draft):
    login(client, bob)
    page = client.get(reverse("campaign_edit", args=[draft.pk])).content.decode()
    assert "Hello {{ first_name }}" in page
    sender = draft.senders.get()
    response = client.post(reverse("campaign_edit", args=[draft.pk]), _form(draft, sender, body="Changed"))
    assert response.status_code == 302
    draft.refresh_from_db()
    assert draft.body == "Changed"


def test_preview_partial_counts_and_personalizes(client, bob, draft):
    login(client, bob)
    lists = [lst.pk for lst in draft.lists.all()]
    response = client.post(reverse("campaign_preview"), {"body": "Hi {{ first_name }} “quoted”", "lists": lists})
    page = response.content.decode()
    assert "Hi P0" in page  # the first opted-in member
    assert "UCS-2" in page  # no smart encoding asked for
    assert "<strong>3</strong> opted-in recipients" in page
    response = client.post(reverse("campaign_preview"), {"body": "Hi “quoted”", "lists": lists, "smart_encoding": "on"})
    assert "GSM-7" in response.content.decode()
    response = client.post(reverse("campaign_preview"), {"body": "x" * 161})
    assert "2 segments" in response.content.decode()


def test_the_preview_says_when_it_uses_sample_data(client, bob, make_recipients):
    from recipients.models import RecipientList

    pending = RecipientList.objects.create(name="pending only")
    make_recipients(2, recipient_list=pending, consent="pending")
    login(client, bob)
    page = client.post(reverse("campaign_preview"), {"body": "Hi {{ first_name }}", "lists": [pending.pk]})
    text = page.content.decode()
    assert "Hi Alex" in text and "(sample: no opted-in member yet" in text
    page = client.post(reverse("campaign_preview"), {"body": "Hi {{ first_name }}"})
    assert "(sample: no opted-in member yet" in page.content.decode()


def test_the_preview_of_a_real_member_is_not_called_a_sample(client, bob, draft):
    login(client, bob)
    lists = [lst.pk for lst in draft.lists.all()]
    text = client.post(reverse("campaign_preview"), {"body": "Hi {{ first_name }}", "lists": lists}).content.decode()
    assert "Hi P0" in text and "Preview for" in text and "(sample:" not in text
    confirm = client.get(reverse("campaign_confirm", args=[draft.pk])).content.decode()
    assert "(sample:" not in confirm


def test_detail_shows_failure_reasons_and_filters_the_log(
    client, carol, bob, draft, django_capture_on_commit_callbacks
):
    from campaigns.services import campaign_launch
    from providers.errors import InvalidRecipient
    from recipients.models import Recipient

    bad = Recipient.objects.filter(consent_status="opted_in").order_by("id").first()
    locmem.fail_numbers[bad.phone] = InvalidRecipient("Number is not reachable", code="21614")
    with django_capture_on_commit_callbacks(execute=True):
        campaign_launch(campaign=draft, user=bob)
    login(client, carol)
    page = client.get(reverse("campaign_detail", args=[draft.pk])).content.decode()
    assert "Number is not reachable" in page
    failed_page = client.get(reverse("campaign_detail", args=[draft.pk]), {"status": "failed"}).content.decode()
    assert bad.phone in failed_page
    others = Recipient.objects.filter(consent_status="opted_in").exclude(pk=bad.pk)
    assert all(o.phone not in failed_page for o in others)
    search = client.get(reverse("campaign_detail", args=[draft.pk]), {"q": others[0].phone[-4:]}).content.decode()
    assert others[0].phone in search and bad.phone not in search
    # Garbage filters are ignored, not a 500.
    assert client.get(reverse("campaign_detail", args=[draft.pk]), {"status": "nope", "after": "x"}).status_code == 200


def test_message_log_pages_without_counting(client, carol, bob, make_recipients, make_sender, make_campaign):
    make_recipients(55, recipient_list="big")
    campaign = make_campaign(bob, lists=["big"], senders=[make_sender(bob)])
    from campaigns.dispatch import materialize_chunk

    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.SENDING)
    campaign.refresh_from_db()
    materialize_chunk(campaign=campaign, list_ids=[campaign.lists.get().pk])
    login(client, carol)
    first = client.get(reverse("campaign_detail", args=[campaign.pk]))
    assert first.context["next_url"] and len(first.context["rows"]) == 50
    second = client.get(first.context["next_url"].split("#")[0])
    assert len(second.context["rows"]) == 5 and second.context["next_url"] is None


def test_status_partial_stops_polling_when_done(client, carol, draft):
    login(client, carol)
    Campaign.objects.filter(pk=draft.pk).update(status=Campaign.Status.SENDING)
    assert 'hx-trigger="every 2s"' in client.get(reverse("campaign_status", args=[draft.pk])).content.decode()
    Campaign.objects.filter(pk=draft.pk).update(status=Campaign.Status.COMPLETED)
    assert "hx-trigger" not in client.get(reverse("campaign_status", args=[draft.pk])).content.decode()


def test_the_dashboard_counts_only_the_messages_of_campaigns_the_reader_sees(
    client, carol, bob, make_user, draft, django_capture_on_commit_callbacks
):
    """The chart and its total follow the campaign visibility rule: another sender's campaign is not
    in a sender's numbers (it was, while the campaign list above it already left it out)."""
    from campaigns.services import campaign_launch

    with django_capture_on_commit_callbacks(execute=True):
        campaign_launch(campaign=draft, user=bob)
    other = make_user("dave", role="sender")
    login(client, other)
    assert "0 campaign messages in the last 14 days" in client.get(reverse("dashboard")).content.decode()
    login(client, carol)  # a viewer reads everything
    assert "3 campaign messages in the last 14 days" in client.get(reverse("dashboard")).content.decode()
    login(client, bob)
    assert "3 campaign messages in the last 14 days" in client.get(reverse("dashboard")).content.decode()


def test_dashboard_shows_running_progress_and_totals(client, carol, bob, draft, django_capture_on_commit_callbacks):
    from campaigns.services import campaign_launch

    with django_capture_on_commit_callbacks(execute=True):
        campaign_launch(campaign=draft, user=bob)
    login(client, carol)
    page = client.get(reverse("dashboard")).content.decode()
    assert "3 campaign messages in the last 14 days" in page
    assert 'role="progressbar"' in page and "100.0%" in page


def test_dashboard_does_not_say_no_campaigns_while_one_is_running(client, carol, sending):
    """The only campaign is running: "Recent campaigns" must not claim there are none."""
    page = login(client, carol).get(reverse("dashboard")).content.decode()
    assert "Draft one" in page and "No campaigns yet." not in page
    assert "the running ones are above" in page


def test_nav_links_every_section_and_audit_only_for_admins(client, carol, alice):
    page = login(client, carol).get(reverse("dashboard")).content.decode()
    for label in ("Dashboard", "Campaigns", "Lists", "Inbox", "Senders", "API tokens", "Relay"):
        assert f">{label}</a>" in page
    assert ">Audit</a>" not in page
    page = login(client, alice).get(reverse("dashboard")).content.decode()
    assert ">Audit</a>" in page


def test_static_assets_are_served_locally(client, carol):
    page = login(client, carol).get(reverse("dashboard")).content.decode()
    assert "/static/js/htmx.min.js" in page and "/static/css/app.css" in page
    # Every script and stylesheet comes from this site (a random CSRF token may spell "cdn").
    sources = re.findall(r'<(?:script|link)\b[^>]*\b(?:src|href)="([^"]*)"', page)
    assert sources and all(s.startswith("/") and not s.startswith("//") for s in sources), sources


def test_unapproved_people_see_nothing(client, make_user, draft):
    eve = make_user("eve", role="admin", is_approved=False)
    client.force_login(eve)
    # Refused (403) or signed out and sent to sign in (302), never shown.
    assert client.get(reverse("dashboard")).status_code in {302, 403}
    assert client.get(reverse("campaign_detail", args=[draft.pk])).status_code in {302, 403}
    assert client.post(reverse("campaign_cancel", args=[draft.pk])).status_code in {302, 403}
    draft.refresh_from_db()
    assert draft.status == Campaign.Status.DRAFT


def test_polled_partials_read_counters_not_messages(
    client, carol, bob, draft, make_campaign, django_assert_max_num_queries
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for i in range(3):
        make_campaign(bob, name=f"Running {i}", status=Campaign.Status.SENDING)
    Campaign.objects.filter(pk=draft.pk).update(status=Campaign.Status.SENDING)
    login(client, carol)
    # Session, user, campaign, counters: nothing grows with the number of messages.
    with django_assert_max_num_queries(4):
        assert client.get(reverse("campaign_status", args=[draft.pk])).status_code == 200
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(reverse("dashboard_running")).status_code == 200
    assert len(ctx.captured_queries) <= 3 + 4  # one counter read per running campaign
    assert not any("campaigns_message" in q["sql"] for q in ctx.captured_queries)


@pytest.mark.parametrize("value", ["99999999999999999999999999", "-1", "abc"])
def test_garbage_paging_values_are_ignored(client, carol, draft, value):
    login(client, carol)
    assert client.get(reverse("campaign_detail", args=[draft.pk]), {"after": value}).status_code == 200


def test_chart_bars_scale_to_the_largest_day():
    from campaigns.charts import stacked_bars

    chart = stacked_bars(
        [{"n": 0, "sent": 10, "failed": 0}, {"n": 1, "sent": 3, "failed": 2}],
        keys=[("sent", "c-sent"), ("failed", "c-failed")],
        label=lambda row: str(row["n"]),
    )
    assert chart["max"] == 10 and not chart["empty"]
    first, second = chart["bars"]
    plot = chart["axis_y"] - chart["top"]
    assert first["rects"][0]["h"] == plot
    assert [r["h"] for r in second["rects"]] == [round(plot * 0.3, 1), round(plot * 0.2, 1)]
    assert second["title"] == "1: 3 sent, 2 failed"


@pytest.fixture
def mixed_outcomes(bob, make_recipients, make_sender, make_campaign):
    """A sending campaign whose ten messages end in every kind of outcome (counters kept by transitions.move)."""
    from datetime import timedelta

    from django.utils import timezone

    from campaigns.dispatch import materialize_chunk
    from messaging.transitions import move

    make_recipients(10, recipient_list="mixed")
    campaign = make_campaign(bob, lists=["mixed"], senders=[make_sender(bob)], name="Mixed")
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.SENDING, launched_at=timezone.now())
    campaign.refresh_from_db()
    materialize_chunk(campaign=campaign, list_ids=[campaign.lists.get().pk])
    ids = list(Message.objects.filter(campaign=campaign).order_by("id").values_list("id", flat=True))
    now = timezone.now()
    sent_at, later = now - timedelta(minutes=3), now - timedelta(minutes=1)
    plan = [  # (status, sent_at, finished_at) for ids in order; the rest stay waiting
        ("delivered", sent_at, later),
        ("delivered", sent_at, later),
        ("sent", sent_at, None),
        ("queued", sent_at, None),
        ("undelivered", sent_at, later),  # sent first, then failed: one message, counted once
        ("failed", None, later),
        ("expired", None, later),
        ("skipped", None, later),
    ]
    pending = ["pending", "claimed", "sending", "queued", "sent"]
    for i, (status, sent, finished) in enumerate(plan):
        fields = {"sent_at": sent, "finished_at": finished}
        move(ids=[ids[i]], to=status, allowed_from=pending, **fields)
    return campaign


def _outcome_counts_in_db(campaign):
    from messaging.outcomes import OUTCOME_OF_STATUS

    counts = dict.fromkeys(["waiting", "sent", "delivered", "failed", "not_sent"], 0)
    for status in Message.objects.filter(campaign=campaign).values_list("status", flat=True):
        counts[OUTCOME_OF_STATUS[status].key] += 1
    return counts


def test_the_numbers_on_the_campaign_page_equal_the_database(client, carol, mixed_outcomes):
    import re

    from django.core.cache import cache

    cache.clear()
    expected = _outcome_counts_in_db(mixed_outcomes)
    assert expected == {"waiting": 2, "sent": 2, "delivered": 2, "failed": 3, "not_sent": 1}
    page = login(client, carol).get(reverse("campaign_detail", args=[mixed_outcomes.pk])).content.decode()
    # The breakdown table: one row per outcome, the same names as the summary line above it.
    table = dict(re.findall(r'<td class="num" data-outcome="(\w+)">(\d+)</td>', page))
    assert {k: int(v) for k, v in table.items()} == {**expected, "total": 10}
    summary = dict(re.findall(r'<span class="key (\w+)" data-outcome="\w+">[^<]*? (\d+)</span>', page))
    assert {k: int(v) for k, v in summary.items()} == expected
    assert "Failed 3" in page and 'Send failed <span data-bucket="failed">1</span>' in page
    assert 'Undelivered <span data-bucket="undelivered">1</span>' in page
    # The chart draws each sent, delivered or failed message exactly once.
    bars = client.get(reverse("campaign_detail", args=[mixed_outcomes.pk])).context["chart"]["bars"]
    drawn = sum(int(n) for bar in bars for n in re.findall(r"(\d+) (?:delivered|sent|failed)", bar["title"]))
    assert drawn == expected["delivered"] + expected["sent"] + expected["failed"] == 7
    # The dashboard's chart and sentence agree with the same rows.
    dashboard = client.get(reverse("dashboard"))
    assert "7 campaign messages in the last 14 days" in dashboard.content.decode()
    totals = {t["key"]: t["n"] for t in dashboard.context["per_day_totals"]}
    assert totals == {k: expected[k] for k in ("delivered", "sent", "failed")}


def test_the_log_and_chart_refresh_while_the_campaign_runs(client, carol, mixed_outcomes):
    from django.core.cache import cache

    cache.clear()
    login(client, carol)
    page = client.get(reverse("campaign_detail", args=[mixed_outcomes.pk])).content.decode()
    activity = reverse("campaign_activity", args=[mixed_outcomes.pk])
    assert f'hx-get="{activity}"' in page and 'id="live-log"' in page
    partial = client.get(activity, {"status": "undelivered"}).content.decode()
    assert 'id="live-log" hx-swap-oob="true"' in partial and "Undelivered" in partial
    log = partial.split('id="live-log"')[1]
    assert log.count('<tr><td class="wide-only">') == 1  # the filter carries over into the refreshed log
    assert "Outcomes over time" in partial
    Campaign.objects.filter(pk=mixed_outcomes.pk).update(status=Campaign.Status.COMPLETED)
    assert "hx-trigger" not in client.get(activity).content.decode()  # the last refresh stops polling


def test_a_launched_campaign_without_rows_says_preparing_not_zero_of_zero(client, carol, sending):
    """Right after launch the rows do not exist yet: no "0.0% · 0 of 0 processed"."""
    login(client, carol)
    for name, args in [("dashboard", []), ("campaign_detail", [sending.pk]), ("campaign_status", [sending.pk])]:
        page = client.get(reverse(name, args=args)).content.decode()
        assert "Preparing recipients" in page, name
        assert "0 of 0 processed" not in page, name
    Campaign.objects.filter(pk=sending.pk).update(status=Campaign.Status.COMPLETED, materialized=True)
    page = client.get(reverse("dashboard")).content.decode()
    assert "Preparing recipients" not in page and "0 / 0 (100.0%)" in page
