"""Tracked short links: per-recipient codes in the sent text, clicks counted, no open redirect."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from campaigns.models import Campaign, ShortLink
from campaigns.selectors import campaign_stats
from campaigns.shortlinks import CODE, find_urls, links_for, new_code, preview_with_short_links, replace_urls
from messaging.encoding import analyze

LONG_URL = "https://shop.example.com/spring/sale?utm_source=sms&utm_campaign=spring-2026&ref=abcdefghijklmnop"


@pytest.fixture(autouse=True)
def short_base(settings):
    settings.SHORT_LINK_BASE_URL = "https://go.example.org"


def test_urls_are_found_without_their_sentence_punctuation():
    text = f"Sale! See {LONG_URL}. Or http://example.org/a), not ftp://x.example"
    assert find_urls(text) == [LONG_URL, "http://example.org/a"]
    assert replace_urls(text, {LONG_URL: "S1"}) == "Sale! See S1. Or http://example.org/a), not ftp://x.example"


@hsettings(max_examples=30, deadline=None)
@given(st.integers(min_value=0, max_value=10))
def test_codes_are_short_and_drawn_from_62_characters(_):
    code = new_code()
    assert CODE.fullmatch(code) and len(code) == 10


def test_the_composer_counts_the_short_links_length_not_the_urls():
    body = f"Spring sale: {LONG_URL} ends Sunday. " * 2
    shortened = preview_with_short_links(body)
    assert LONG_URL not in shortened and "https://go.example.org/xxxxxxxxxx" in shortened
    assert analyze(shortened).segments < analyze(body).segments


@pytest.mark.django_db
def test_each_recipient_gets_their_own_stable_link(bob, make_campaign, make_recipients):
    campaign = make_campaign(bob, track_links=True)
    first, second = make_recipients(2)
    wanted = [(campaign.pk, first.pk, LONG_URL), (campaign.pk, second.pk, LONG_URL)]

    links = links_for(wanted)
    assert len(set(links.values())) == 2
    assert links_for(wanted) == links  # a retried message says the same thing
    assert ShortLink.objects.count() == 2


@pytest.mark.django_db
def test_a_colliding_code_is_drawn_again(bob, make_campaign, make_recipients, monkeypatch):
    campaign = make_campaign(bob, track_links=True)
    first, second = make_recipients(2)
    links_for([(campaign.pk, first.pk, LONG_URL)])
    taken = ShortLink.objects.get().code
    draws = iter([taken, "Zz0123456789"[:10]])
    monkeypatch.setattr("campaigns.shortlinks.new_code", lambda: next(draws))

    (link,) = links_for([(campaign.pk, second.pk, LONG_URL)]).values()
    assert link.endswith("/Zz01234567") and ShortLink.objects.count() == 2


@pytest.fixture
def link(bob, make_campaign, make_recipients):
    campaign = make_campaign(bob, track_links=True, status=Campaign.Status.SENDING)
    (person,) = make_recipients(1)
    (url,) = links_for([(campaign.pk, person.pk, LONG_URL)]).values()
    return ShortLink.objects.get(code=url.rsplit("/", 1)[1])


@pytest.mark.django_db
def test_a_click_redirects_to_the_stored_url_and_is_counted(client, link, bob):
    phone = {"HTTP_USER_AGENT": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)"}
    for _ in range(2):
        response = client.get(f"/l/{link.code}", **phone)
        assert response.status_code == 302 and response["Location"] == LONG_URL

    link.refresh_from_db()
    assert (link.clicks, link.user_agent_category) == (2, "mobile") and link.first_clicked_at is not None
    assert campaign_stats(campaign=link.campaign)["clicks"] == {"total": 2, "unique": 1, "recipients": 1}
    client.force_login(bob)
    assert client.get(f"/api/v1/campaigns/{link.campaign_id}/stats").json()["clicks"] == {
        "total": 2,
        "unique": 1,
        "recipients": 1,
    }
    assert "Link clicks: <strong>2</strong>" in client.get(f"/campaigns/{link.campaign_id}").content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path", ["/l/AAAAAAAAAA", "/l/short", "/l/%2F%2Fevil.example", "/l/https:%2F%2Fevil.example", "/l/AAAAAAAAAA%00"]
)
def test_unknown_or_malformed_codes_are_404_and_never_redirect(client, link, path):
    response = client.get(path)
    assert response.status_code == 404 and "Location" not in response


@pytest.mark.django_db
def test_an_expired_link_shows_a_friendly_page_and_counts_nothing(client, link):
    ShortLink.objects.filter(pk=link.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    response = client.get(f"/l/{link.code}")
    assert response.status_code == 410 and "This link has expired" in response.content.decode()
    link.refresh_from_db()
    assert link.clicks == 0


@pytest.mark.django_db
def test_links_survive_the_message_purge(client, link, settings):
    from recipients.retention import purge_expired

    settings.RETENTION_MESSAGE_DAYS = 1
    purge_expired()
    assert client.get(f"/l/{link.code}").status_code == 302


@pytest.mark.django_db
def test_a_launched_campaign_sends_each_recipient_their_own_short_link(
    bob, make_sender, make_recipients, make_campaign, django_capture_on_commit_callbacks
):
    from campaigns.services import campaign_launch
    from campaigns.tasks import run_sweep
    from providers.backends import locmem

    make_recipients(3, recipient_list="customers")
    campaign = make_campaign(
        bob, lists=["customers"], senders=[make_sender(bob)], body=f"Sale: {LONG_URL}", track_links=True
    )
    with django_capture_on_commit_callbacks(execute=True):
        campaign_launch(campaign=campaign, user=bob)
    run_sweep()

    bodies = [m.body for m in locmem.outbox]
    assert len(bodies) == 3 and not any(LONG_URL in b for b in bodies)
    codes = {find_urls(b)[0] for b in bodies}
    assert len(codes) == 3 and all(c.startswith("https://go.example.org/") for c in codes)
    assert set(ShortLink.objects.values_list("target_url", flat=True)) == {LONG_URL}


@pytest.mark.django_db
def test_a_message_whose_recipient_was_erased_keeps_one_stable_link(bob, make_campaign):
    campaign = make_campaign(bob, track_links=True)
    wanted = [(campaign.pk, None, LONG_URL)]

    links = links_for(wanted)
    assert links_for(wanted) == links and ShortLink.objects.count() == 1


@pytest.fixture
def launched_link(bob, make_campaign, make_recipients):
    campaign = make_campaign(
        bob, track_links=True, status=Campaign.Status.COMPLETED, launched_at=timezone.now() - timedelta(minutes=30)
    )
    first, second = make_recipients(2)
    urls = links_for([(campaign.pk, first.pk, LONG_URL), (campaign.pk, second.pk, LONG_URL)])
    return campaign, [u.rsplit("/", 1)[1] for u in urls.values()]


@pytest.mark.django_db
def test_clicks_are_charted_on_the_campaign_page_from_counters(client, bob, launched_link, django_assert_num_queries):
    from django.core.cache import cache

    from campaigns.ui_selectors import campaign_click_timeline

    campaign, (one, two) = launched_link
    for code in (one, one, one, two):
        assert client.get(f"/l/{code}").status_code == 302

    cache.clear()
    with django_assert_num_queries(1):  # the counter rows of this campaign, grouped: no message or link is read
        (bucket,) = campaign_click_timeline(campaign=campaign)
    assert (bucket["first"], bucket["repeat"]) == (2, 2)
    client.force_login(bob)
    page = client.get(f"/campaigns/{campaign.pk}").content.decode()
    assert "Link clicks over time" in page and "2 first clicks, 2 repeat clicks" in page
    assert "Link clicks: <strong>4</strong>" in page


@pytest.mark.django_db
def test_a_campaign_without_link_tracking_has_no_click_chart(client, bob, make_campaign):
    campaign = make_campaign(bob, status=Campaign.Status.COMPLETED, launched_at=timezone.now())
    client.force_login(bob)
    assert "Link clicks over time" not in client.get(f"/campaigns/{campaign.pk}").content.decode()


@pytest.mark.django_db
def test_squashing_keeps_each_click_minute_and_every_total(client, launched_link):
    from campaigns.counters import campaigns_to_squash, squash
    from campaigns.models import CampaignCounter

    campaign, (one, two) = launched_link
    for code in (one, one, two):
        client.get(f"/l/{code}")
    earlier = timezone.now().replace(second=0, microsecond=0) - timedelta(minutes=5)
    CampaignCounter.objects.bulk_create(  # two clicks of a link, five minutes ago
        [CampaignCounter(campaign=campaign, bucket=b, count=1, minute=earlier) for b in ("clicks", "clicks")]
    )
    before = campaign_stats(campaign=campaign)
    assert campaign.pk in campaigns_to_squash()

    squash(campaign.pk)
    rows = CampaignCounter.objects.filter(campaign=campaign, bucket__in=["clicks", "clickers"])
    assert sorted((r.bucket, r.minute == earlier, r.count) for r in rows) == [
        ("clickers", False, 2),
        ("clicks", False, 3),
        ("clicks", True, 2),
    ]
    assert campaign_stats(campaign=campaign) == before and before["clicks"] == {
        "total": 5,
        "unique": 2,
        "recipients": 2,
    }
    assert campaign.pk not in campaigns_to_squash()


@pytest.mark.django_db
def test_the_redirect_skips_sessions_and_still_checks_the_host(client, link, settings):
    settings.ALLOWED_HOSTS = ["go.example.org"]
    response = client.get(f"/l/{link.code}", HTTP_HOST="go.example.org")
    assert response.status_code == 302 and response["Location"] == LONG_URL
    assert "Cookie" not in response.get("Vary", "") and not response.cookies  # no session middleware ran
    assert response["X-Content-Type-Options"] == "nosniff"  # SecurityMiddleware still does
    assert client.get(f"/l/{link.code}", HTTP_HOST="evil.example").status_code == 400
    assert client.head(f"/l/{link.code}", HTTP_HOST="go.example.org").status_code == 405  # GET only, as before
    link.refresh_from_db()
    assert link.clicks == 1


@pytest.mark.django_db(transaction=True)
def test_only_the_click_commits_without_waiting_for_the_disk(bob, make_campaign, make_recipients):
    from django.db import connection

    from campaigns.shortlinks import record_click

    campaign = make_campaign(bob, track_links=True)
    (person,) = make_recipients(1)
    (url,) = links_for([(campaign.pk, person.pk, LONG_URL)]).values()
    assert record_click(code=url.rsplit("/", 1)[1], user_agent="").target_url == LONG_URL
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone() == ("on",)  # SET LOCAL: gone with the click's transaction


@pytest.mark.django_db
def test_a_click_is_one_statement_when_no_app_wants_it(link, django_assert_num_queries):
    from campaigns.shortlinks import record_click
    from events.services import _forget_endpoints

    _forget_endpoints()  # what an earlier test left in this process's memory of the endpoint flag
    record_click(code=link.code, user_agent="")  # the first one may read the endpoint flag it then caches
    with django_assert_num_queries(1):  # no webhook endpoint: no transaction around it, no event query
        assert record_click(code=link.code, user_agent="").target_url == LONG_URL
    link.refresh_from_db()
    assert link.clicks == 2


@pytest.mark.django_db
def test_a_recipient_with_two_links_counts_once_among_the_recipients_who_clicked(
    client, bob, make_campaign, make_recipients
):
    campaign = make_campaign(bob, track_links=True, status=Campaign.Status.SENDING)
    person, other = make_recipients(2)
    urls = links_for(
        [
            (campaign.pk, person.pk, LONG_URL),
            (campaign.pk, person.pk, "https://example.org/b"),
            (campaign.pk, other.pk, LONG_URL),
        ]
    )
    mine = [u.rsplit("/", 1)[1] for (_, r, _), u in urls.items() if r == person.pk]
    for code in [*mine, *mine]:
        assert client.get(f"/l/{code}").status_code == 302

    assert campaign_stats(campaign=campaign)["clicks"] == {"total": 4, "unique": 2, "recipients": 1}
    client.force_login(bob)
    assert "2 links clicked at least once, by 1 recipient)" in client.get(f"/campaigns/{campaign.pk}").content.decode()
