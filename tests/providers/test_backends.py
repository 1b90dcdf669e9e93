"""Plivo and Flowroute backends over real HTTP against the fake provider."""

from __future__ import annotations

import pytest

from providers.backends import flowroute, live, plivo
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
from tests.providers.conftest import PLIVO_SECRET, sms

BACKENDS = {"plivo": plivo.SMSBackend, "flowroute": flowroute.SMSBackend}
LONG = "Spring sale! " * 40  # 520 GSM-7 characters: four segments
UNICODE = "Grüße 👋 — 你好, ça va? " * 3


def send_one(provider: str, message):
    (outcome,) = BACKENDS[provider]().send_messages([message])
    return outcome


@pytest.mark.parametrize("body", ["Hello", LONG, UNICODE])
def test_plivo_sends_sms_with_a_callback_naming_our_message(fake, body):
    outcome = send_one("plivo", sms(ref="42", body=body))

    assert outcome.accepted, outcome.error
    (sent,) = fake.messages(provider="plivo")
    assert outcome.provider_message_id == sent["id"]
    assert sent["src"] == "14155550100"  # digits with country code, no "+"
    assert sent["dst"] == "+14155552671"
    assert sent["text"] == body
    assert sent["type"] == "sms"
    assert sent["url"] == f"https://sms.example.com/webhooks/plivo/{PLIVO_SECRET}/status/42/"
    assert sent["method"] == "POST"


def test_plivo_sends_mms_with_media(fake):
    media = tuple(f"https://cdn.example.com/{i}.jpg" for i in range(10))
    outcome = send_one("plivo", sms(body="Look", media_urls=media))

    assert outcome.accepted, outcome.error
    (sent,) = fake.messages(provider="plivo")
    assert sent["type"] == "mms" and sent["media_urls"] == list(media) and sent["text"] == "Look"


def test_plivo_refuses_more_than_ten_media_without_a_request(fake):
    outcome = send_one("plivo", sms(media_urls=tuple(f"https://cdn.example.com/{i}.jpg" for i in range(11))))

    assert isinstance(outcome.error, PermanentError)
    assert fake.stats()["requests"] == 0


@pytest.mark.parametrize("body", ["Hello", LONG, UNICODE])
def test_flowroute_sends_sms_with_eleven_digit_numbers(fake, body):
    outcome = send_one("flowroute", sms(ref="7", body=body, provider="flowroute"))

    assert outcome.accepted, outcome.error
    (sent,) = fake.messages(provider="flowroute")
    assert outcome.provider_message_id == sent["id"] and sent["id"].startswith("mdr2-")
    assert (sent["src"], sent["dst"]) == ("14155550100", "14155552671")
    assert sent["text"] == body and sent["type"] == "sms"
    assert sent["url"] == "https://sms.example.com/webhooks/flowroute/s3cret-flowroute-path/status/7/"


def test_flowroute_sends_mms(fake):
    outcome = send_one("flowroute", sms(provider="flowroute", body="", media_urls=("https://cdn.example.com/a.png",)))

    assert outcome.accepted, outcome.error
    (sent,) = fake.messages(provider="flowroute")
    assert sent["type"] == "mms" and sent["media_urls"] == ["https://cdn.example.com/a.png"]


def test_flowroute_dlr_callback_uses_the_newest_secret_while_rotating(fake, settings):
    settings.FLOWROUTE_WEBHOOK_SECRET = "new-secret, old-secret"
    send_one("flowroute", sms(ref="9", provider="flowroute"))

    assert fake.messages(provider="flowroute")[0]["url"].endswith("/flowroute/new-secret/status/9/")


def test_flowroute_refuses_non_nanp_destinations_without_a_request(fake):
    outcome = send_one("flowroute", sms(to="+447700900123", provider="flowroute"))

    assert isinstance(outcome.error, InvalidRecipient)
    assert fake.stats()["requests"] == 0


@pytest.mark.parametrize("provider", ["plivo", "flowroute"])
def test_a_5xx_is_transient(fake, provider):
    fake.configure(rate_5xx=1.0, codes_5xx=[503])
    error = send_one(provider, sms(provider=provider)).error

    assert type(error) is TransientError
    assert error.http_status == 503 and "injected" in error.message
    assert fake.messages() == []


@pytest.mark.parametrize("provider", ["plivo", "flowroute"])
def test_a_429_is_rate_limited_and_honours_retry_after(fake, provider):
    fake.configure(rate_429=1.0, retry_after=7)
    error = send_one(provider, sms(provider=provider)).error

    assert isinstance(error, RateLimited) and not error.permanent
    assert error.retry_after == 7 and error.http_status == 429


@pytest.mark.parametrize("provider", ["plivo", "flowroute"])
def test_a_read_timeout_is_an_unknown_outcome_not_a_retry(fake, settings, provider):
    """The request reached the provider: it may have accepted it, so it is never simply sent again."""
    settings.SMS_HTTP_TIMEOUT = 0.3
    fake.configure(rate_timeout=1.0, timeout_hold_s=3)
    error = send_one(provider, sms(provider=provider)).error

    assert type(error) is OutcomeUnknown and error.code == "read_timeout"


@pytest.mark.parametrize("provider", ["plivo", "flowroute"])
def test_a_dropped_connection_is_an_unknown_outcome(fake, provider):
    fake.configure(rate_drop=1.0)
    error = send_one(provider, sms(provider=provider)).error

    assert type(error) is OutcomeUnknown and error.code == "disconnected"


def test_a_refused_connection_is_transient(fake, settings):
    settings.PLIVO_API_URL = "http://127.0.0.1:9"  # discard port: nothing listens
    error = send_one("plivo", sms()).error

    assert isinstance(error, TransientError) and not error.permanent


@pytest.mark.parametrize(
    ("provider", "http", "text", "kind"),
    [
        ("plivo", 400, "invalid destination number", InvalidRecipient),
        ("plivo", 400, "text parameter not present", PermanentError),
        ("plivo", 403, "geo permission not enabled for this country", PermanentError),
        ("plivo", 400, "destination number has opted out (STOP)", RecipientOptedOut),
        ("flowroute", 422, "'to' is not a mobile number", InvalidRecipient),
        ("flowroute", 403, "messaging not enabled on this number", PermanentError),
    ],
)
def test_4xx_are_permanent_with_the_providers_text(fake, provider, http, text, kind):
    fake.configure(fail_numbers={"+14155552671": {"http": http, "error": text}})
    error = send_one(provider, sms(provider=provider)).error

    assert type(error) is kind and error.permanent
    assert error.message == text and error.http_status == http


@pytest.mark.parametrize("provider", ["plivo", "flowroute"])
def test_refused_credentials_fail_authentication(fake, settings, provider):
    settings.PLIVO_AUTH_TOKEN = settings.FLOWROUTE_SECRET_KEY = "wrong"
    error = send_one(provider, sms(provider=provider)).error

    assert isinstance(error, AuthenticationFailed) and error.http_status == 401


@pytest.mark.parametrize(("provider", "setting"), [("plivo", "PLIVO_AUTH_ID"), ("flowroute", "FLOWROUTE_SECRET_KEY")])
def test_missing_credentials_are_a_configuration_error(fake, settings, provider, setting):
    setattr(settings, setting, "")
    error = send_one(provider, sms(provider=provider)).error

    assert isinstance(error, ConfigurationError) and error.permanent
    assert fake.stats()["requests"] == 0


def test_flowroute_without_a_webhook_secret_is_a_configuration_error(fake, settings):
    settings.FLOWROUTE_WEBHOOK_SECRET = ""
    error = send_one("flowroute", sms(provider="flowroute")).error

    assert isinstance(error, ConfigurationError)


def test_live_backend_routes_each_message_to_its_provider(fake):
    outcomes = live.SMSBackend().send_messages(
        [
            sms(ref="1", provider="plivo"),
            sms(ref="2", provider="flowroute", to="+14155552672"),
            sms(ref="3", provider="vonage"),
        ]
    )

    assert [o.accepted for o in outcomes] == [True, True, False]
    assert isinstance(outcomes[2].error, ConfigurationError)
    assert {(m["provider"], m["dst"].lstrip("+")) for m in fake.messages()} == {
        ("plivo", "14155552671"),
        ("flowroute", "14155552672"),
    }


def test_many_sends_go_concurrently_and_exactly_once(fake):
    fake.configure(latency_ms=50)
    messages = [sms(ref=str(i), to=f"+1415666{i:04d}") for i in range(200)]
    outcomes = plivo.SMSBackend().send_messages(messages)

    assert all(o.accepted for o in outcomes)
    assert fake.stats()["accepted"] == 200 and fake.duplicates() == []


@pytest.mark.parametrize("provider", ["plivo", "flowroute"])
def test_a_refusal_is_stored_as_the_providers_short_text_not_its_json_body(fake, provider):
    fake.configure(rate_5xx=1.0, codes_5xx=[503])
    outcome = send_one(provider, sms(provider=provider))

    assert isinstance(outcome.error, TransientError)
    assert (outcome.error.http_status, outcome.error.message) == (503, "internal server error (injected)")


@pytest.mark.parametrize(
    ("fault", "timeout", "code"),
    [
        # a drop comes at once: a long timeout, or a busy machine's slow fake reads as a read timeout
        ({"rate_drop": 1.0}, 10.0, "disconnected"),
        ({"rate_timeout": 1.0, "timeout_hold_s": 30.0}, 0.5, "read_timeout"),
    ],
)
def test_network_failures_over_real_sockets_say_what_happened(fake, settings, fault, timeout, code):
    settings.SMS_HTTP_TIMEOUT = timeout
    fake.configure(**fault)
    outcome = send_one("plivo", sms())

    assert isinstance(outcome.error, OutcomeUnknown) and outcome.error.code == code


def test_a_refused_connection_is_not_a_timeout(fake, settings):
    import socket

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    settings.PLIVO_API_URL = f"http://127.0.0.1:{port}"  # nothing listens there
    outcome = send_one("plivo", sms())

    assert type(outcome.error) is TransientError and outcome.error.code == "refused"


def test_a_bug_after_the_request_went_out_leaves_the_outcome_unknown(fake):
    class Broken(plivo.SMSBackend):
        def message_id(self, response):
            raise RuntimeError("a bug reading the answer")

    (outcome,) = Broken().send_messages([sms(ref="7")])

    assert isinstance(outcome.error, OutcomeUnknown)  # never retried: the provider has it
    assert "a bug reading the answer" in outcome.error.message
    assert len(fake.messages(provider="plivo")) == 1
