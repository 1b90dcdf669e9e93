"""SMS character encoding and segment counting (pure Python, no Django).

An SMS body is sent either as GSM-7 (7-bit septets, 160 per single message,
153 per part of a concatenated message) or, as soon as a single character
outside the GSM-7 alphabet appears, as UCS-2 (UTF-16 code units, 70 per single
message, 67 per part). Characters of the GSM-7 extension table are sent as an
escape septet followed by the character, so they cost two septets; likewise a
character outside the Basic Multilingual Plane (most emoji) is a UTF-16
surrogate pair and costs two units. Neither pair may be split across the parts
of a concatenated message, so segments are computed by packing the characters
rather than by dividing the total by the per-segment size.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, Literal

from providers import registry as sms_providers

__all__ = [
    "GSM7_BASIC",
    "GSM7_EXTENSION",
    "MAX_BODY_CHARS",
    "SegmentInfo",
    "analyze",
    "is_gsm7",
    "smart_encode",
]

#: The longest body every provider accepts (providers.registry), in characters.
MAX_BODY_CHARS = sms_providers.max_body_chars()

GSM7: Final = "GSM-7"
UCS2: Final = "UCS-2"
Encoding = Literal["GSM-7", "UCS-2"]

GSM7_SINGLE_LIMIT = 160
GSM7_MULTI_LIMIT = 153
UCS2_SINGLE_LIMIT = 70
UCS2_MULTI_LIMIT = 67

# The 3GPP TS 23.038 default alphabet, in code order, without 0x1B (ESC, the
# escape to the extension table, which is not a character a user can type).
# Written with escapes so that the source stays plain ASCII.
GSM7_BASIC: frozenset[str] = frozenset(
    "@\u00a3$\u00a5\u00e8\u00e9\u00f9\u00ec\u00f2\u00c7\n\u00d8\u00f8\r\u00c5\u00e5"
    "\u0394_\u03a6\u0393\u039b\u03a9\u03a0\u03a8\u03a3\u0398\u039e\u00c6\u00e6\u00df\u00c9"
    " !\"#\u00a4%&'()*+,-./"
    "0123456789:;<=>?"
    "\u00a1ABCDEFGHIJKLMNOPQRSTUVWXYZ\u00c4\u00d6\u00d1\u00dc\u00a7"
    "\u00bfabcdefghijklmnopqrstuvwxyz\u00e4\u00f6\u00f1\u00fc\u00e0"
)

# Extension table: form feed, ^ { } \ [ ~ ] | and the euro sign; 2 septets each.
GSM7_EXTENSION: frozenset[str] = frozenset("\f^{}\\[~]|\u20ac")

_GSM7_ALL: frozenset[str] = GSM7_BASIC | GSM7_EXTENSION


@dataclass(frozen=True, slots=True)
class SegmentInfo:
    """How a message body is encoded and how many SMS segments it takes.

    ``characters`` is ``len(text)`` (code points). ``units`` is septets for
    GSM-7 (extension characters count 2) or UTF-16 code units for UCS-2
    (characters outside the BMP count 2). ``per_segment_limit`` is the capacity
    of a segment for this message (single-part or multi-part size) and
    ``remaining_in_segment`` the units still free in the last segment.
    """

    encoding: Encoding
    characters: int
    units: int
    segments: int
    per_segment_limit: int
    remaining_in_segment: int


def is_gsm7(text: str) -> bool:
    """True if every character of ``text`` is in the GSM-7 basic or extension table."""
    return all(ch in _GSM7_ALL for ch in text)


def _pack(costs: Iterable[int], limit: int) -> tuple[int, int]:
    """Greedily pack indivisible costs into segments of ``limit`` units.

    Returns ``(segments, units used in the last segment)``.
    """
    segments = 1
    used = 0
    for cost in costs:
        if used + cost > limit:
            segments += 1
            used = cost
        else:
            used += cost
    return segments, used


def analyze(text: str) -> SegmentInfo:
    """Work out the encoding and segment count of an SMS body."""
    encoding: Encoding
    if is_gsm7(text):
        encoding = GSM7
        costs = [2 if ch in GSM7_EXTENSION else 1 for ch in text]
        single_limit, multi_limit = GSM7_SINGLE_LIMIT, GSM7_MULTI_LIMIT
    else:
        encoding = UCS2
        costs = [2 if ord(ch) > 0xFFFF else 1 for ch in text]
        single_limit, multi_limit = UCS2_SINGLE_LIMIT, UCS2_MULTI_LIMIT

    units = sum(costs)
    if units == 0:
        segments, limit, used = 0, single_limit, 0
    elif units <= single_limit:
        segments, limit, used = 1, single_limit, units
    else:
        limit = multi_limit
        segments, used = _pack(costs, multi_limit)

    return SegmentInfo(
        encoding=encoding,
        characters=len(text),
        units=units,
        segments=segments,
        per_segment_limit=limit,
        remaining_in_segment=limit - used,
    )


# Look-alikes outside GSM-7 and the GSM-7 text that replaces them. Only
# characters that are not in GSM-7 themselves appear as keys.
_SMART_REPLACEMENTS: dict[str, str] = {
    # Single quotes, apostrophes, primes and accents used as apostrophes.
    "\u0060": "'",  # grave accent (backtick)
    "\u00b4": "'",  # acute accent
    "\u02b9": "'",  # modifier letter prime
    "\u02bb": "'",  # modifier letter turned comma
    "\u02bc": "'",  # modifier letter apostrophe
    "\u02c8": "'",  # modifier letter vertical line
    "\u2018": "'",  # left single quotation mark
    "\u2019": "'",  # right single quotation mark
    "\u201a": "'",  # single low-9 quotation mark
    "\u201b": "'",  # single high-reversed-9 quotation mark
    "\u2032": "'",  # prime
    "\u2035": "'",  # reversed prime
    "\u2039": "<",  # single left-pointing angle quotation mark
    "\u203a": ">",  # single right-pointing angle quotation mark
    "\uff07": "'",  # fullwidth apostrophe
    # Double quotes, double primes and guillemets.
    "\u00ab": '"',  # left-pointing double angle quotation mark
    "\u00bb": '"',  # right-pointing double angle quotation mark
    "\u02ba": '"',  # modifier letter double prime
    "\u02dd": '"',  # double acute accent
    "\u201c": '"',  # left double quotation mark
    "\u201d": '"',  # right double quotation mark
    "\u201e": '"',  # double low-9 quotation mark
    "\u201f": '"',  # double high-reversed-9 quotation mark
    "\u2033": '"',  # double prime
    "\u2036": '"',  # reversed double prime
    "\uff02": '"',  # fullwidth quotation mark
    # Hyphens, dashes and the minus sign.
    "\u2010": "-",  # hyphen
    "\u2011": "-",  # non-breaking hyphen
    "\u2012": "-",  # figure dash
    "\u2013": "-",  # en dash
    "\u2014": "-",  # em dash
    "\u2015": "-",  # horizontal bar
    "\u2043": "-",  # hyphen bullet
    "\u2212": "-",  # minus sign
    "\ufe63": "-",  # small hyphen-minus
    "\uff0d": "-",  # fullwidth hyphen-minus
    # Bullets.
    "\u2022": "-",  # bullet
    "\u2023": "-",  # triangular bullet
    "\u2219": "-",  # bullet operator
    # Ellipsis and other multi-character look-alikes.
    "\u2026": "...",  # horizontal ellipsis
    "\u203c": "!!",  # double exclamation mark
    # Slashes, tildes, carets (the last two land in the extension table,
    # which costs 2 septets but is still far cheaper than UCS-2).
    "\u2044": "/",  # fraction slash
    "\u2215": "/",  # division slash
    "\u02c6": "^",  # modifier letter circumflex accent
    "\u02dc": "~",  # small tilde
    "\u223c": "~",  # tilde operator
    # Spaces.
    "\t": " ",  # character tabulation
    "\u00a0": " ",  # no-break space
    "\u1680": " ",  # ogham space mark
    "\u2000": " ",  # en quad
    "\u2001": " ",  # em quad
    "\u2002": " ",  # en space
    "\u2003": " ",  # em space
    "\u2004": " ",  # three-per-em space
    "\u2005": " ",  # four-per-em space
    "\u2006": " ",  # six-per-em space
    "\u2007": " ",  # figure space
    "\u2008": " ",  # punctuation space
    "\u2009": " ",  # thin space
    "\u200a": " ",  # hair space
    "\u202f": " ",  # narrow no-break space
    "\u205f": " ",  # medium mathematical space
    "\u3000": " ",  # ideographic space
    # Line and paragraph separators.
    "\u2028": "\n",  # line separator
    "\u2029": "\n",  # paragraph separator
    # Invisible characters that only force UCS-2 (not the zero-width joiners,
    # which hold emoji sequences together).
    "\u00ad": "",  # soft hyphen
    "\u200b": "",  # zero-width space
    "\u2060": "",  # word joiner
    "\ufeff": "",  # zero-width no-break space (BOM)
}

_SMART_TABLE = str.maketrans(_SMART_REPLACEMENTS)


def smart_encode(text: str) -> str:
    """Replace Unicode look-alikes with GSM-7 characters.

    Curly quotes, primes, dashes, the minus sign, bullets, the ellipsis,
    guillemets and the various Unicode spaces become their GSM-7 equivalents;
    decomposed accents are composed (NFC) so that e.g. ``e`` + combining acute
    becomes the GSM-7 ``\u00e9``. Characters without a GSM-7 look-alike (emoji,
    most non-Latin scripts) are left alone, so the result may still need UCS-2.
    GSM-7 characters are never changed.
    """
    if is_gsm7(text):
        return text
    if not text.isascii():
        # NFC only composes/recomposes sequences that contain non-GSM-7
        # characters (combining marks, compatibility singletons such as the
        # ohm and angstrom signs), so GSM-7 text is unaffected.
        text = unicodedata.normalize("NFC", text)
    return text.translate(_SMART_TABLE)
