"""smsportal.phone: the shortcuts around phonenumbers.parse give exactly what phonenumbers gives."""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smsportal.phone import InvalidNumber, parse_valid


def _reference(raw: str, region: str) -> str | None:
    try:
        parsed = phonenumbers.parse(raw.strip(), region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def _ours(raw: str, region: str) -> str | None:
    try:
        return parse_valid(raw, region=region)[0]
    except InvalidNumber:
        return None


digits = st.text(alphabet="0123456789", min_size=9, max_size=12)
separators = st.lists(st.sampled_from(["", " ", "-", ".", "(", ")", "  "]), min_size=12, max_size=12)


@settings(max_examples=50, deadline=None)
@given(digits=digits, seps=separators, region=st.sampled_from(["US", "CA", "JM", "GB", "DE"]))
def test_national_shapes_parse_as_phonenumbers_parses_them(digits, seps, region):
    raw = "".join(sep + d for sep, d in zip(seps, digits, strict=False))
    assert _ours(raw, region) == _reference(raw, region), raw


@pytest.mark.parametrize(
    "raw",
    [
        "(415) 555-2671",
        "1-415-555-2671",
        "415.555.2671",
        "1 (415) 555 2671",
        "4155552671",
        "14155552671",
        "(415) 055-2671",
        "1415555267",
        "(212) 555-0100",
        "+1 415 555 2671",
        "415-555-2671 x12",
        "1-800-FLOWERS",
    ],
)
def test_common_shapes_agree_with_phonenumbers(raw):
    assert _ours(raw, "US") == _reference(raw, "US")
    assert _ours(raw, "GB") == _reference(raw, "GB")


@pytest.mark.parametrize(
    ("raw", "region", "reason"),
    [
        ("not-a-number", "US", "not a phone number"),
        (
            "020 7946 0958",
            "ZZ",
            "not a phone number: no country code (start with + and the country code, or set a region)",
        ),
        ("+1", "US", "not a phone number"),
        ("+44 1234567890123456789", "US", "not a phone number: too long"),
    ],
)
def test_parse_failures_read_as_words_not_library_codes(raw, region, reason):
    """Import reports and form errors show this text; '(1) The string supplied…' means nothing to a person."""
    with pytest.raises(InvalidNumber) as caught:
        parse_valid(raw, region=region)
    assert str(caught.value) == reason
