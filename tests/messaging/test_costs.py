"""Message cost: prices from delivery reports, campaign totals from counters, estimates and the budget guard."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from campaigns.models import Campaign, CampaignEvent
from campaigns.selectors import campaign_stats
from campaigns.tasks import probe_auto_paused
from messaging.costs import estimate_cost
from messaging.models import Message, MessageStatus, SegmentRate
from providers.status import micros
from providers.tasks import drain_status_events
from providers.webhooks.flowroute import nanodollars_to_micros
from tests.providers.conftest import PLIVO_SECRET, PLIVO_TOKEN, signed_plivo_post

S = MessageStatus
SECRET = "s3cret-flowroute-path"


@pytest.fixture(autouse=True)
def webhook_settings(settings):
    settings.PLIVO_AUTH_TOKEN = PLIVO_TOKEN
    settings.PLIVO_WEBHOOK_SECRET = PLIVO_SECRET
    settings.FLOWROUTE_WEBHOOK_SECRET = SECRET
    settings.PUBLIC_BASE_URL = "https://sms.example.com"
    settings.SMS_COST_CURRENCY = "USD"


def plivo_report(client, message, status, **extra):
    params = {"MessageUUID": "uuid-1", "Status": status, "To": "14155552671", "From": "14155550100", **extra}
    assert signed_plivo_post(client, f"/webhooks/plivo/{PLIVO_SECRET}/status/{message.pk}/", params).status_code == 200


def flowroute_report(client, message, status, **attrs):
    body = {"data": {"id": "mdr2-1", "attributes": {"status": status, "status_code": "0", "level": 2, **attrs}}}
    path = f"/webhooks/flowroute/{SECRET}/status/{message.pk}/"
    assert client.post(path, data=body, content_type="application/json").status_code == 200


def make_message(campaign=None, status=S.QUEUED, provider="plivo", n=0, **fields):
    # The provider's id the reports below carry: a report changes only the message it is bound to.
    fields.setdefault("provider_message_id", "uuid-1" if provider == "plivo" else "mdr2-1")
    return Message.objects.create(
        campaign=campaign,
        kind=Message.Kind.CAMPAIGN if campaign else Message.Kind.SINGLE,
        to=f"+1415555{2600 + n:04d}",
        sender="+14155550100",
        provider=provider,
        status=status,
        **fields,
    )


def settle(message):
    drain_status_events()
    message.refresh_from_db()
    return message


# --- parsing ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "expected"),
    [("0.00650", 6500), ("0.0000005", 1), ("0", 0), ("1.5", 1_500_000), ("abc", None), ("-0.01", None), ("NaN", None)],
)
def test_decimal_amounts_become_micro_units(amount, expected):
    assert micros(amount) == expected


@hsettings(max_examples=40, deadline=None)
@given(st.integers(min_value=0, max_value=10**12))
def test_nanodollars_round_half_up_to_micro_units(nanos):
    assert nanodollars_to_micros(nanos) == int((Decimal(nanos) / 1000).quantize(Decimal(1), rounding="ROUND_HALF_UP"))
    assert nanodollars_to_micros(str(nanos)) == nanodollars_to_micros(nanos)


@pytest.mark.parametrize("junk", [None, True, -5, 1.5, "x", [], {}])
def test_nanodollars_that_are_not_a_price_are_ignored(junk):
    assert nanodollars_to_micros(junk) is None


# --- per message ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_plivo_report_prices_its_message_once_however_often_it_arrives(client):
    message = make_message()
    for status in ("sent", "delivered", "delivered"):
        plivo_report(client, message, status, Units="2", TotalRate="0.00325", TotalAmount="0.00650")

    settle(message)
    assert (message.status, message.cost_micros, message.cost_currency) == (S.DELIVERED, 6500, "USD")


@pytest.mark.django_db
@pytest.mark.parametrize("amount", ["", "free", "-1"])
def test_a_report_without_a_usable_price_still_moves_the_message(client, amount):
    message = make_message()
    plivo_report(client, message, "delivered", TotalAmount=amount)

    settle(message)
    assert (message.status, message.cost_micros, message.cost_currency) == (S.DELIVERED, None, "")


@pytest.mark.django_db
def test_a_flowroute_amount_in_nanodollars_prices_the_message(client):
    message = make_message(provider="flowroute")
    flowroute_report(client, message, "delivered", amount_nanodollars=4_000_500, amount_display="$0.0040")

    settle(message)
    assert (message.status, message.cost_micros, message.cost_currency) == (S.DELIVERED, 4001, "USD")


# --- per campaign ---------------------------------------------------------------------------------


@pytest.fixture
def sending_campaign(bob, make_campaign):
    return make_campaign(bob, status=Campaign.Status.SENDING, recipient_total=3)


@pytest.mark.django_db
def test_campaign_cost_rolls_up_from_counters_and_shows_in_the_stats_api(client, sending_campaign, bob):
    messages = [make_message(sending_campaign, n=i) for i in range(3)]
    plivo_report(client, messages[0], "delivered", TotalAmount="0.0055")
    plivo_report(client, messages[1], "delivered", TotalAmount="0.0110")
    plivo_report(client, messages[1], "delivered", TotalAmount="0.0110")  # a duplicate adds nothing
    drain_status_events()
    plivo_report(client, messages[0], "delivered", TotalAmount="0.0060")  # a higher price replaces the first

    drain_status_events()
    cost = campaign_stats(campaign=sending_campaign)["cost"]
    assert (cost["actual_micros"], cost["priced_messages"], cost["currency"]) == (17000, 2, "USD")

    client.force_login(bob)
    body = client.get(f"/api/v1/campaigns/{sending_campaign.pk}/stats").json()
    assert body["cost"]["actual_micros"] == 17000
    page = client.get(f"/campaigns/{sending_campaign.pk}").content.decode()
    assert "0.0170 USD" in page


@pytest.mark.django_db
def test_a_campaign_pauses_itself_before_it_would_exceed_its_budget(client, sending_campaign):
    Campaign.objects.filter(pk=sending_campaign.pk).update(max_spend_micros=15000)
    messages = [make_message(sending_campaign, n=i) for i in range(3)]

    plivo_report(client, messages[0], "delivered", TotalAmount="0.0060")
    drain_status_events()
    sending_campaign.refresh_from_db()
    assert sending_campaign.status == Campaign.Status.SENDING  # 6000 spent, the next ~6000 still fits

    plivo_report(client, messages[1], "delivered", TotalAmount="0.0060")
    drain_status_events()
    sending_campaign.refresh_from_db()
    assert sending_campaign.status == Campaign.Status.PAUSED  # 12000 + ~6000 would pass 15000
    assert "Budget reached" in sending_campaign.pause_reason
    event = CampaignEvent.objects.get(campaign=sending_campaign)
    assert event.kind == "budget_pause" and "0.0120 USD" in event.detail
    # Not a provider outage: beat's probe must not resume it (and spend past the budget); a person does.
    assert sending_campaign.auto_paused is False
    probe_auto_paused()
    sending_campaign.refresh_from_db()
    assert sending_campaign.status == Campaign.Status.PAUSED


# --- estimates ---------------------------------------------------------------------------------


@pytest.fixture
def rates(db):
    SegmentRate.objects.create(provider="plivo", country="US", sms_segment_price=Decimal("0.0050"))
    SegmentRate.objects.create(provider="plivo", country="*", sms_segment_price=Decimal("0.0400"))
    SegmentRate.objects.create(provider="flowroute", country="US", sms_segment_price=Decimal("0.0070"))


def test_the_estimate_is_segments_times_recipients_times_the_rate_per_country(rates):
    one = estimate_cost(
        providers=["plivo"], recipients_by_country={"US": 10, "GB": 2}, segments=2, is_mms=False, currency="USD"
    )
    assert one.micros == 10 * 2 * 5000 + 2 * 2 * 40000 and one.complete
    # Several providers: the dearest rate counts; a country one of them has no rate for is reported.
    both = estimate_cost(
        providers=["plivo", "flowroute"],
        recipients_by_country={"US": 10, "GB": 2},
        segments=1,
        is_mms=False,
        currency="USD",
    )
    assert both.micros == 10 * 7000 + 2 * 40000 and both.unpriced == {"GB": 2}


@pytest.mark.django_db
def test_the_composer_shows_the_estimate_and_launch_stores_it(
    client, rates, bob, make_sender, make_recipients, make_campaign
):
    sender = make_sender(bob)
    make_recipients(4, recipient_list="customers")
    client.force_login(bob)
    from recipients.models import RecipientList

    customers = RecipientList.objects.get(name="customers")
    response = client.post(
        "/campaigns/preview",
        {"body": "Hi", "lists": [customers.pk], "senders": [sender.pk], "add_stop_footer": ""},
    )
    assert "Estimated cost: <strong>0.0200 USD</strong>" in response.content.decode()

    campaign = make_campaign(bob, lists=[customers], senders=[sender], body="Hi", add_stop_footer=False)
    from campaigns.services import campaign_launch

    campaign_launch(campaign=campaign, user=bob)
    campaign.refresh_from_db()
    assert campaign.estimated_cost_micros == 4 * 5000


@pytest.mark.django_db
def test_the_composer_says_who_has_no_rate(client, bob, make_sender, make_recipients):
    # No rates at all: the note counts recipients (it read "no rate for 4 in US").
    sender = make_sender(bob)
    make_recipients(4, recipient_list="customers")
    client.force_login(bob)
    from recipients.models import RecipientList

    customers = RecipientList.objects.get(name="customers")
    response = client.post("/campaigns/preview", {"body": "Hi", "lists": [customers.pk], "senders": [sender.pk]})
    assert "(no rate for 4 recipients in US: not counted" in response.content.decode()


@pytest.mark.django_db
def test_the_campaign_csv_lists_each_messages_cost_and_the_total(client, sending_campaign, bob):
    first, second = make_message(sending_campaign, n=0), make_message(sending_campaign, n=1)
    plivo_report(client, first, "delivered", TotalAmount="0.0055")
    drain_status_events()
    client.force_login(bob)

    response = client.get(f"/campaigns/{sending_campaign.pk}/messages.csv")
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert lines[0] == "to,sender,status,segments,sent_at,finished_at,error,cost,currency"
    rows = {line.split(",")[0]: line.split(",") for line in lines[1:]}
    assert rows[first.to][-2:] == ["0.005500", "USD"]
    assert rows[second.to][-2:] == ["", ""]
    assert rows["total"][-2:] == ["0.005500", "USD"]


@pytest.mark.django_db
def test_a_flowroute_receipt_without_a_price_is_priced_from_the_message_record(
    client, fake_provider, settings, django_capture_on_commit_callbacks
):
    from devtools.fake_provider import flowroute as fake_flowroute
    from providers.backends import get_backend
    from tests.providers.conftest import sms

    for key, value in fake_flowroute.product_settings(fake_provider.config, fake_provider.url).items():
        setattr(settings, key, value)
    settings.FLOWROUTE_WEBHOOK_SECRET = SECRET
    fake_provider.configure(callbacks=False)
    message = make_message(provider="flowroute")
    (sent,) = get_backend("providers.backends.flowroute.SMSBackend").send_messages(
        [sms(ref=str(message.pk), provider="flowroute", body="Hello there")]
    )
    assert sent.accepted, sent.error
    Message.objects.filter(pk=message.pk).update(provider_message_id=sent.provider_message_id)  # as the engine does

    body = {"data": {"id": sent.provider_message_id, "attributes": {"status": "delivered", "level": 2}}}
    with django_capture_on_commit_callbacks(execute=True):
        path = f"/webhooks/flowroute/{SECRET}/status/{message.pk}/"
        assert client.post(path, data=body, content_type="application/json").status_code == 200

    settle(message)
    # The fake's record says $0.0045 per segment, as amount_nanodollars.
    assert (message.status, message.cost_micros, message.cost_currency) == (S.DELIVERED, 4500, "USD")
