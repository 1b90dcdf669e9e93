"""The provider contract: every provider in providers.registry passes these, over real HTTP to the fake.

The providers come from the registry, and what a test needs to know about one
comes from its registry entry, its webhook module and its fake-provider module
(``devtools/fake_provider/<name>.py``). A new provider runs all of this unchanged.
"""

from __future__ import annotations

import importlib

import pytest
from django.conf import settings as django_settings
from django.utils.module_loading import import_string

from campaigns.models import Campaign
from messaging import engine
from messaging.models import Message
from providers import registry
from providers.backends import get_backend, live
from providers.backends.base import ProviderBackend
from providers.errors import (
    AuthenticationFailed,
    ConfigurationError,
    InvalidRecipient,
    OutcomeUnknown,
    PermanentError,
    RateLimited,
    RecipientOptedOut,
    TransientError,
)
from providers.models import ProviderEvent
from providers.registry import ErrorMeaning
from providers.signals import inbound_received
from providers.status import DeliveryStatus
from providers.tasks import drain_status_events
from tests.conftest import wait_for
from tests.providers.conftest import sms

FAKE_PACKAGE = "devtools.fake_provider"  # where each provider's fake-provider module lives
TO, OUR_NUMBER, ABROAD = "+14155552671", "+14155550100", "+447700900123"
S = DeliveryStatus


def fake_module(name: str):
    return importlib.import_module(f"{FAKE_PACKAGE}.{name}")


def webhook_module(info: registry.ProviderInfo):
    return importlib.import_module(info.webhooks)


@pytest.fixture(params=registry.entries(), ids=registry.names())
def info(request) -> registry.ProviderInfo:
    return request.param


@pytest.fixture
def aimed(info, fake_provider, settings):
    """The fake provider, with smsportal's settings for ``info`` pointing at it; callbacks off."""
    for key, value in fake_module(info.name).product_settings(fake_provider.config, fake_provider.url).items():
        setattr(settings, key, value)
    settings.PUBLIC_BASE_URL = "https://sms.example.com"
    fake_provider.configure(callbacks=False)
    return fake_provider


@pytest.fixture
def live_fake(aimed, live_server, settings):
    """The fake provider with callbacks on, posting to the live server."""
    settings.PUBLIC_BASE_URL = live_server.url
    # Few callbacks at once: each live-server request thread holds a database connection.
    aimed.configure(callbacks=True, callback_delay_s=0.05, callback_concurrency=4, callback_retries=3)
    return aimed


def send(info: registry.ProviderInfo, **kw):
    (outcome,) = get_backend(info.backend).send_messages([sms(provider=info.name, **kw)])
    return outcome


# --- wiring ------------------------------------------------------------------------------


def test_the_registry_entry_names_the_backend_webhooks_settings_and_fake(info):
    backend = import_string(info.backend)
    assert issubclass(backend, ProviderBackend) and backend.provider == info.name and backend.info is info
    hooks = webhook_module(info)
    assert hooks.urlpatterns and callable(hooks.inbound_url)
    assert django_settings.SMS_PROVIDER_BACKENDS[info.name] == info.backend
    assert info.name in django_settings.SMS_PROVIDER_MPS
    assert all(hasattr(django_settings, s.name) for s in info.settings)
    fake = fake_module(info.name)
    assert callable(fake.product_settings) and callable(fake.forged_inbound)
    assert info.name == info.name.lower() and info.name.isidentifier() and len(info.name) <= 20


# --- sending -------------------------------------------------------------------------------


@pytest.mark.parametrize("body", ["Hello", "Spring sale! " * 40, "Grüße 👋 — 你好, ça va?"])
def test_a_send_is_accepted_with_the_providers_id_and_a_callback_for_our_message(aimed, info, body):
    outcome = send(info, ref="42", body=body)

    assert outcome.accepted, outcome.error
    (sent,) = aimed.messages(provider=info.name)
    assert outcome.provider == info.name and outcome.provider_message_id == sent["id"]
    assert (sent["dst"].lstrip("+"), sent["src"].lstrip("+")) == (TO[1:], OUR_NUMBER[1:])
    assert (sent["text"], sent["type"]) == (body, "sms")
    assert sent["url"].startswith("https://sms.example.com/webhooks/") and sent["url"].endswith("/42/")


def test_an_mms_carries_its_media(aimed, info):
    if not info.mms:
        pytest.skip(f"{info.label} sends no MMS")
    media = tuple(f"https://cdn.example.com/{i}.jpg" for i in range(info.max_media or 1))
    outcome = send(info, body="Look", media_urls=media)

    assert outcome.accepted, outcome.error
    (sent,) = aimed.messages(provider=info.name)
    assert sent["type"] == "mms" and sent["media_urls"] == list(media)


def test_the_live_backend_routes_to_the_numbers_provider(aimed, info):
    (outcome,) = live.SMSBackend().send_messages([sms(provider=info.name)])

    assert outcome.accepted, outcome.error
    assert [m["provider"] for m in aimed.messages()] == [info.name]


def test_what_the_registry_says_it_cannot_send_is_refused_before_any_request(aimed, info):
    refused = []
    if info.nanp_only:
        refused += [(dict(to=ABROAD), InvalidRecipient), (dict(sender="+442071838750"), PermanentError)]
    if info.max_body_chars is not None:
        refused.append((dict(body="a" * (info.max_body_chars + 1)), PermanentError))
    if not info.mms:
        refused.append((dict(media_urls=("https://cdn.example.com/a.jpg",)), PermanentError))
    elif info.max_media is not None:
        media = tuple(f"https://cdn.example.com/{i}.jpg" for i in range(info.max_media + 1))
        refused.append((dict(media_urls=media), PermanentError))

    for kw, kind in refused:
        error = send(info, **kw).error
        assert isinstance(error, kind) and error.permanent, (kw, error)
    assert aimed.stats()["requests"] == 0


def test_what_the_registry_allows_is_sent(aimed, info):
    if not info.nanp_only:
        assert send(info, ref="1", to=ABROAD).accepted
    if info.max_body_chars is not None:
        assert send(info, ref="2", body="a" * info.max_body_chars).accepted
    assert info.can_send_to(TO)


# --- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "kind"),
    [
        ({"rate_5xx": 1.0, "codes_5xx": [503]}, TransientError),
        ({"rate_429": 1.0, "retry_after": 7}, RateLimited),
    ],
    ids=["5xx", "429"],
)
def test_provider_trouble_is_transient(aimed, info, fault, kind):
    aimed.configure(**fault)
    error = send(info).error

    assert isinstance(error, kind) and not error.permanent
    if kind is RateLimited:
        assert error.retry_after == 7 and error.http_status == 429
    assert aimed.messages() == []


@pytest.mark.parametrize(
    ("fault", "code"),
    [({"rate_timeout": 1.0, "timeout_hold_s": 3}, "read_timeout"), ({"rate_drop": 1.0}, "disconnected")],
    ids=["timeout", "dropped"],
)
def test_a_lost_answer_is_an_unknown_outcome(aimed, info, settings, fault, code):
    """The request reached the provider, which may have accepted it: never simply sent again."""
    settings.SMS_HTTP_TIMEOUT = 0.3
    aimed.configure(**fault)
    error = send(info).error

    assert type(error) is OutcomeUnknown and error.code == code


@pytest.mark.parametrize(
    ("http", "text", "kind"),
    [
        (400, "invalid destination number", InvalidRecipient),
        (400, "destination number has opted out (STOP)", RecipientOptedOut),
        (403, "messaging is not enabled for this number", PermanentError),
        (404, "no such resource", PermanentError),
    ],
)
def test_refusals_are_permanent_and_keep_the_providers_text(aimed, info, http, text, kind):
    aimed.configure(fail_numbers={TO: {"http": http, "error": text}})
    error = send(info).error

    assert type(error) is kind and error.permanent
    assert (error.message, error.http_status) == (text, http)


def test_wrong_credentials_fail_authentication(aimed, info, settings):
    for setting in info.settings:
        if setting.kind == "secret":
            setattr(settings, setting.name, "wrong")
    error = send(info).error

    assert isinstance(error, AuthenticationFailed) and error.http_status == 401


def test_missing_credentials_are_a_configuration_error_without_a_request(aimed, info, settings):
    for setting in info.settings:
        if setting.kind == "secret":
            setattr(settings, setting.name, "")
    error = send(info).error

    assert isinstance(error, ConfigurationError) and error.permanent
    assert aimed.stats()["requests"] == 0


# --- delivery reports ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("outcome", "code", "final"),
    [("delivered", None, S.DELIVERED), ("undelivered", 80, S.UNDELIVERED), ("failed", 30, S.FAILED)],
)
def test_delivery_reports_map_onto_the_normalized_statuses(live_fake, info, outcome, code, final):
    if code is not None:
        live_fake.configure(accept_then_fail={TO: {"status": outcome, "error_code": code}})
    sent = send(info, ref="77")
    assert sent.accepted, sent.error

    wait_for(lambda: ProviderEvent.objects.filter(message_ref="77", status=final).exists(), message=str(final))
    events = list(ProviderEvent.objects.filter(message_ref="77").order_by("id"))
    assert {(e.provider, e.kind, e.provider_message_id) for e in events} == {
        (info.name, "status", sent.provider_message_id)
    }
    assert {e.status for e in events} - {final} <= {S.QUEUED, S.SENT}
    last = next(e for e in events if e.status == final)
    assert last.error_code == ("" if code is None else str(code))
    assert (last.error_text != "") is (code is not None)
    assert live_fake.stats()["callbacks_failed"] == 0


OPTED_OUT_CODES = [
    pytest.param(p, code, id=f"{p.name}-{code}")
    for p in registry.entries()
    for code, meaning in p.error_meanings.items()
    if meaning is ErrorMeaning.OPTED_OUT
]


@pytest.mark.parametrize(("info", "code"), OPTED_OUT_CODES)
def test_a_report_that_means_opted_out_opts_the_recipient_out(
    live_fake, info, code, settings, bob, make_sender, make_recipients, make_campaign
):
    settings.SMS_BACKEND = "providers.backends.live.SMSBackend"
    (person,) = make_recipients(1, recipient_list="customers")
    campaign = make_campaign(
        bob, lists=["customers"], senders=[make_sender(bob, provider=info.name)], status=Campaign.Status.SENDING
    )
    message = Message.objects.create(campaign=campaign, recipient=person, to=person.phone)
    live_fake.configure(accept_then_fail={person.phone: {"status": "failed", "error_code": int(code)}})

    assert engine.send_batch(message_ids=[message.pk]).accepted == 1

    def opted_out() -> bool:
        drain_status_events()
        person.refresh_from_db()
        return person.consent_status == "opted_out"

    wait_for(opted_out, timeout=20, message="the recipient opted out")
    message.refresh_from_db()
    assert (message.status, message.error_code, message.error_permanent) == ("failed", code, True)


# --- inbound ---------------------------------------------------------------------------------------


@pytest.fixture
def received():
    got = []

    def receiver(sender, inbound, **kwargs):
        got.append(inbound)

    inbound_received.connect(receiver, weak=False)
    yield got
    inbound_received.disconnect(receiver)


def test_inbound_sms_and_mms_become_normalized_messages(live_fake, info, received):
    url = webhook_module(info).inbound_url()
    media = ["https://m.example.com/1.jpg", "https://m.example.com/2.png"]

    sms_answer = live_fake.send_inbound(info.name, TO, OUR_NUMBER, "Hello there", url=url)
    mms_answer = live_fake.send_inbound(info.name, TO, OUR_NUMBER, "Look", media_urls=media, url=url)

    assert (sms_answer["status"], mms_answer["status"]) == (200, 200), (sms_answer, mms_answer)
    assert [(i.provider, i.sender, i.to, i.text, i.media_urls, i.provider_message_id) for i in received] == [
        (info.name, TO, OUR_NUMBER, "Hello there", (), sms_answer["id"]),
        (info.name, TO, OUR_NUMBER, "Look", tuple(media), mms_answer["id"]),
    ]
    assert ProviderEvent.objects.filter(kind="inbound", provider=info.name).count() == 2


def test_a_forged_inbound_is_refused_and_changes_nothing(live_fake, info, received):
    url, extra = fake_module(info.name).forged_inbound(webhook_module(info).inbound_url())

    answer = live_fake.send_inbound(info.name, TO, OUR_NUMBER, "STOP", url=url, **extra)

    assert answer["status"] == 403, answer
    assert received == [] and ProviderEvent.objects.count() == 0
