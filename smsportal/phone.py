"""Phone number parsing: one place, so every entry point normalizes the same way."""

from __future__ import annotations

import functools
import re

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError

_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
# +1 and ten digits not starting with 0 or 1: phonenumbers.parse would strip nothing and yield exactly
# country code 1 + this national number, so that parse (about half the cost) can be skipped.
_NANP_E164 = re.compile(r"\+1[2-9][0-9]{9}")  # [0-9]: \d also matches non-ASCII digits
# The national shapes spreadsheets hold: "(415) 555-0100", "1-415-555-0100", "415.555.0100". Only
# digits and these separators, ten digits (or 1 and ten) starting 2-9: for a region whose country
# code is 1, phonenumbers.parse reads exactly +1 and those ten digits (the leading 1 is the national
# prefix), so its parse is skipped here too; the validity check is not. tests/foundation/test_phone.py
# compares the two on generated input.
_SEPARATORS = str.maketrans("", "", " ()-.")
_NANP_NATIONAL = re.compile(r"1?([2-9][0-9]{9})")


@functools.lru_cache(maxsize=64)
def _nanp_region(region: str) -> bool:
    return phonenumbers.country_code_for_region(region) == 1


@functools.lru_cache(maxsize=256)
def _first_region_decides(country_code: int) -> str | None:
    """The first region of a calling code shared by several (+1: US, CA, the Caribbean), when the
    library's validity check starts by checking the number against that region's full patterns.

    ``is_valid_number`` finds the number's region first (the first region in the calling code's
    list whose patterns match, or whose leading digits do) and then checks it against that region's
    patterns again: for +1 the same dozen regular expressions twice. A number valid for the first
    region (no leading digits of its own) is the one that search returns, so it is valid; only the
    others need the library's whole check. tests/foundation/test_phone.py compares the two."""
    regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(country_code)
    if not regions or len(regions) == 1:
        return None
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(regions[0].upper(), None)
    if metadata is None or metadata.leading_digits is not None:
        return None
    return regions[0]


def is_valid(parsed: phonenumbers.PhoneNumber) -> bool:
    """``phonenumbers.is_valid_number``, without its second pass for most valid numbers."""
    first = _first_region_decides(parsed.country_code)
    if first is not None and phonenumbers.is_valid_number_for_region(parsed, first):
        return True
    return phonenumbers.is_valid_number(parsed)


class InvalidNumber(ValueError):
    pass


# The library's own messages ("(1) The string supplied did not seem to be…") end up in import reports
# and form errors, so each reason gets words a person can act on.
_PARSE_ERRORS = {
    phonenumbers.NumberParseException.INVALID_COUNTRY_CODE: (
        "not a phone number: no country code (start with + and the country code, or set a region)"
    ),
    phonenumbers.NumberParseException.NOT_A_NUMBER: "not a phone number",
    phonenumbers.NumberParseException.TOO_SHORT_AFTER_IDD: "not a phone number: too short",
    phonenumbers.NumberParseException.TOO_SHORT_NSN: "not a phone number: too short",
    phonenumbers.NumberParseException.TOO_LONG: "not a phone number: too long",
}


def normalize(raw: str, *, region: str | None = None) -> str:
    """Return the E.164 form of ``raw`` or raise :class:`InvalidNumber` with a reason."""
    return parse_valid(raw, region=region)[0]


def parse_valid(raw: str, *, region: str | None = None) -> tuple[str, phonenumbers.PhoneNumber]:
    """Like :func:`normalize`, but also return the parsed number (saves a re-parse)."""
    text = (raw or "").strip()
    if not text:
        raise InvalidNumber("empty phone number")
    if _NANP_E164.fullmatch(text):
        parsed = phonenumbers.PhoneNumber(country_code=1, national_number=int(text[2:]))
        if not is_valid(parsed):
            raise InvalidNumber("not a valid phone number")
        return text, parsed
    region = region or settings.SMS_DEFAULT_REGION
    national = _NANP_NATIONAL.fullmatch(text.translate(_SEPARATORS)) if _nanp_region(region) else None
    if national is not None:
        parsed = phonenumbers.PhoneNumber(country_code=1, national_number=int(national[1]))
        if not is_valid(parsed):
            raise InvalidNumber("not a valid phone number")
        return f"+1{national[1]}", parsed
    try:
        parsed = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidNumber(_PARSE_ERRORS.get(exc.error_type, "not a phone number")) from None
    if not is_valid(parsed):
        raise InvalidNumber("not a valid phone number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164), parsed


def validate_e164(value: str) -> None:
    if not _E164.match(value or ""):
        raise ValidationError("Enter a number in E.164 form, e.g. +14155550100.")


def country_of_prefix(prefix: str) -> str:
    """The main country (ISO code) of the calling code that an E.164 prefix such as "+4477" starts with; "" if none."""
    digits = prefix.lstrip("+")
    for length in (1, 2, 3):
        code = digits[:length]
        if len(code) == length and code.isdigit() and int(code) in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            region = phonenumbers.region_code_for_country_code(int(code))
            return "" if region == "001" or region == "ZZ" else region
    return ""
