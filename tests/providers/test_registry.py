"""The provider registry is the one place that names providers; everything else asks it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from providers import registry
from providers.registry import ErrorMeaning
from providers.status import DeliveryStatus, StatusEvent

ROOT = Path(__file__).resolve().parents[2]
# The apps and the project package; providers/ is where provider knowledge lives.
PRODUCT_DIRS = ("accounts", "api", "campaigns", "recipients", "relay", "smsportal", "templates")
PROVIDER_WORDS = re.compile("|".join(registry.names()), re.IGNORECASE)


def test_no_provider_is_named_outside_providers():
    leaks = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for folder in PRODUCT_DIRS
        for path in sorted((ROOT / folder).rglob("*"))
        if path.suffix in {".py", ".html", ".txt"} and "migrations" not in path.parts
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if PROVIDER_WORDS.search(line)
    ]
    assert leaks == []


def test_names_are_unique_and_the_first_is_the_default():
    assert len(set(registry.names())) == len(registry.names()) >= 1
    assert registry.default_name() == registry.names()[0]
    assert registry.choices() == [(p.name, p.label) for p in registry.entries()]


def test_an_unknown_name_is_an_error():
    with pytest.raises(registry.UnknownProvider, match="no SMS provider named 'vonage'"):
        registry.get("vonage")


@pytest.mark.django_db
def test_models_forms_and_serializers_offer_the_registrys_choices():
    from accounts.forms import SenderForm
    from accounts.models import AuthorizedSender
    from api.serializers.relay import RelayNumberCreateSerializer, RelayNumberSerializer
    from relay.models import RelayNumber

    expected = registry.choices()
    for model in (AuthorizedSender, RelayNumber):
        field = model._meta.get_field("provider")
        assert list(field.choices) == expected and field.get_default() == registry.default_name()
    assert list(SenderForm().fields["provider"].choices) == expected
    assert list(RelayNumberCreateSerializer().fields["provider"].choices.items()) == expected
    assert list(RelayNumberSerializer().fields["provider"].choices.items()) == expected


def test_the_portal_limits_are_what_every_provider_accepts():
    from messaging.compose import MAX_MEDIA_URLS
    from messaging.encoding import MAX_BODY_CHARS

    bodies = [p.max_body_chars for p in registry.entries() if p.max_body_chars is not None]
    media = [p.max_media for p in registry.entries() if p.mms and p.max_media is not None]
    assert min(bodies, default=registry.DEFAULT_MAX_BODY_CHARS) == MAX_BODY_CHARS
    assert min(media, default=registry.DEFAULT_MAX_MEDIA) == MAX_MEDIA_URLS


def test_nanp_only_providers_cannot_reach_numbers_abroad():
    nanp_only = [p.name for p in registry.entries() if p.nanp_only]

    assert registry.unable_to_send_to("+447700900123") == nanp_only
    assert registry.unable_to_send_to("+14155552671") == []


def test_error_codes_have_normalized_meanings():
    for p in registry.entries():
        for code, meaning in p.error_meanings.items():
            assert registry.error_meaning(p.name, code) is meaning
            event = StatusEvent(provider=p.name, message_ref="1", status=DeliveryStatus.FAILED, error_code=code)
            assert event.meaning is meaning
            assert event.recipient_opted_out is (meaning is ErrorMeaning.OPTED_OUT)


def test_a_code_means_nothing_without_a_provider_that_lists_it():
    assert registry.error_meaning("sandbox", "80") is None
    assert registry.error_meaning(registry.default_name(), "") is None
    assert registry.error_meaning(registry.default_name(), "no-such-code") is None
    assert not StatusEvent(provider="locmem", message_ref="1", status=DeliveryStatus.FAILED).recipient_opted_out


def test_silence_means_unsent_after_a_providers_stated_bound_plus_the_grace():
    # Plivo fails a message still queued after 3 hours, with a report (reference/providers.md).
    assert registry.get("plivo").gives_up_after_seconds == 3 * 3600
    assert registry.silence_means_unsent_after("plivo") == 3 * 3600 + registry.REPORT_GRACE_SECONDS
    # Flowroute states no bound; a backend that is no provider has none either.
    assert registry.get("flowroute").gives_up_after_seconds is None
    assert registry.silence_means_unsent_after("flowroute") == registry.UNSTATED_REPORT_WAIT_SECONDS
    assert registry.silence_means_unsent_after("sandbox") == registry.UNSTATED_REPORT_WAIT_SECONDS
