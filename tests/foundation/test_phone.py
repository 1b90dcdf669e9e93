"""smsportal.phone: the shortcuts around phonenumbers.parse give exactly what phonenumbers gives."""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smsportal.phone import InvalidNumber, is_valid, parse_valid


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


def _numbers_around_every_shared_calling_code() -> list[phonenumbers.PhoneNumber]:
    """For each calling code of several regions (+1, +7, +44, ...): every region's example numbers of
    every type, and the same with their last digits changed, one digit more and one less."""
    out = []
    for country_code, regions in phonenumbers.COUNTRY_CODE_TO_REGION_CODE.items():
        if len(regions) < 2:
            continue
        for region in regions:
            for kind in range(12):  # PhoneNumberType FIXED_LINE .. VOICEMAIL
                example = phonenumbers.example_number_for_type(region, kind)
                if example is None:
                    continue
                national = str(example.national_number)
                for variant in {national, national[:-2] + "00", national[:-2] + "99", national + "5", national[:-1]}:
                    if variant:
                        out.append(phonenumbers.PhoneNumber(country_code=country_code, national_number=int(variant)))
    return out


def test_is_valid_agrees_with_phonenumbers_on_every_shared_calling_code():
    numbers = _numbers_around_every_shared_calling_code()
    assert len(numbers) > 1000
    assert sum(phonenumbers.is_valid_number(n) for n in numbers) > 300  # both outcomes are compared
    assert [n for n in numbers if is_valid(n) != phonenumbers.is_valid_number(n)] == []


@settings(max_examples=300, deadline=None)
@given(national=st.integers(min_value=2_000_000_000, max_value=9_999_999_999))
def test_is_valid_agrees_with_phonenumbers_on_nanp_numbers(national):
    number = phonenumbers.PhoneNumber(country_code=1, national_number=national)
    assert is_valid(number) == phonenumbers.is_valid_number(number)
