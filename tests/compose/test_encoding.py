"""Encoding detection, unit counting and segment packing (no database)."""

import sys
from pathlib import Path

# Make the project importable when pytest-django (which would add it) is off.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import pytest

from messaging.encoding import (
    GSM7_BASIC,
    GSM7_EXTENSION,
    MAX_BODY_CHARS,
    SegmentInfo,
    analyze,
    is_gsm7,
    smart_encode,
)

EURO = "\u20ac"
EMOJI = "\U0001f600"  # outside the BMP: a UTF-16 surrogate pair
ZHE = "\u0416"  # Cyrillic capital Zhe: in the BMP, not in GSM-7
LDQ, RDQ = "\u201c", "\u201d"  # curly double quotes
RSQ = "\u2019"  # curly apostrophe
ELLIPSIS = "\u2026"
EM_DASH = "\u2014"

# (id, text, encoding, characters, units, segments, per_segment_limit, remaining)
CASES = [
    ("empty", "", "GSM-7", 0, 0, 0, 160, 160),
    ("one char", "a", "GSM-7", 1, 1, 1, 160, 159),
    ("gsm 160", "a" * 160, "GSM-7", 160, 160, 1, 160, 0),
    ("gsm 161", "a" * 161, "GSM-7", 161, 161, 2, 153, 145),
    ("gsm 306", "a" * 306, "GSM-7", 306, 306, 2, 153, 0),
    ("gsm 307", "a" * 307, "GSM-7", 307, 307, 3, 153, 152),
    ("gsm 153*3", "a" * 459, "GSM-7", 459, 459, 3, 153, 0),
    ("gsm 153*3+1", "a" * 460, "GSM-7", 460, 460, 4, 153, 152),
    ("euro counts 2", EURO, "GSM-7", 1, 2, 1, 160, 158),
    ("80 euros fill one segment", EURO * 80, "GSM-7", 80, 160, 1, 160, 0),
    ("159 + ext overflows single", "a" * 159 + "^", "GSM-7", 160, 161, 2, 153, 145),
    # 152 septets + an escape pair: the pair does not fit in the 153-septet
    # first part, so it moves whole to the second part.
    (
        "escape pair moves to next segment",
        "a" * 152 + EURO + "b" * 10,
        "GSM-7",
        163,
        164,
        2,
        153,
        141,
    ),
    # 306 septets would fit 2 x 153, but the escape pair at the boundary
    # wastes one septet, so it takes 3 segments.
    (
        "escape pair at boundary costs a segment",
        "a" * 152 + EURO + "a" * 152,
        "GSM-7",
        305,
        306,
        3,
        153,
        152,
    ),
    (
        "escape pair exactly filling segment",
        "a" * 151 + "{" + "a" * 10,
        "GSM-7",
        162,
        163,
        2,
        153,
        143,
    ),
    ("crlf counts 2", "a\r\nb", "GSM-7", 4, 4, 1, 160, 156),
    ("lf counts 1", "a\nb", "GSM-7", 3, 3, 1, 160, 157),
    (
        "gsm greek and accents",
        "\u0394\u03a9 \u00e9\u00e8 \u00c7\u00df \u00a3\u00a5\u00a7",
        "GSM-7",
        12,
        12,
        1,
        160,
        148,
    ),
    ("ucs2 70", ZHE * 70, "UCS-2", 70, 70, 1, 70, 0),
    ("ucs2 71", ZHE * 71, "UCS-2", 71, 71, 2, 67, 63),
    ("ucs2 134", ZHE * 134, "UCS-2", 134, 134, 2, 67, 0),
    ("ucs2 135", ZHE * 135, "UCS-2", 135, 135, 3, 67, 66),
    ("single non-gsm char switches to ucs2", "a" * 100 + ZHE, "UCS-2", 101, 101, 2, 67, 33),
    ("one curly quote in 70 chars", "a" * 69 + RSQ, "UCS-2", 70, 70, 1, 70, 0),
    ("one curly quote in 71 chars", "a" * 70 + RSQ, "UCS-2", 71, 71, 2, 67, 63),
    ("extension chars count 1 in ucs2", EURO * 10 + ZHE, "UCS-2", 11, 11, 1, 70, 59),
    ("emoji is 2 units", EMOJI, "UCS-2", 1, 2, 1, 70, 68),
    ("35 emoji fill one segment", EMOJI * 35, "UCS-2", 35, 70, 1, 70, 0),
    ("36 emoji", EMOJI * 36, "UCS-2", 36, 72, 2, 67, 61),
    ("emoji at single segment end", "a" * 68 + EMOJI, "UCS-2", 69, 70, 1, 70, 0),
    # 134 units would fit 2 x 67, but the surrogate pair may not straddle the
    # boundary after 66 units, so a third segment is needed.
    (
        "surrogate pair at boundary costs a segment",
        ZHE * 66 + EMOJI + ZHE * 66,
        "UCS-2",
        133,
        134,
        3,
        67,
        66,
    ),
    (
        "surrogate pair exactly filling segment",
        ZHE * 65 + EMOJI + ZHE * 5,
        "UCS-2",
        71,
        72,
        2,
        67,
        62,
    ),
    ("gsm text with one emoji", "Hi " + EMOJI, "UCS-2", 4, 5, 1, 70, 65),
]


@pytest.mark.parametrize(
    ("text", "encoding", "characters", "units", "segments", "limit", "remaining"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_analyze(text, encoding, characters, units, segments, limit, remaining):
    assert analyze(text) == SegmentInfo(
        encoding=encoding,
        characters=characters,
        units=units,
        segments=segments,
        per_segment_limit=limit,
        remaining_in_segment=remaining,
    )


@pytest.mark.parametrize("char", sorted(GSM7_EXTENSION))
def test_every_extension_character_counts_double(char):
    info = analyze(char * 3)
    assert info.encoding == "GSM-7"
    assert info.characters == 3
    assert info.units == 6


@pytest.mark.parametrize("char", ["\u20ac", "^", "{", "}", "[", "]", "~", "\\", "|", "\f"])
def test_extension_table_is_complete(char):
    assert char in GSM7_EXTENSION
    assert is_gsm7(char)


@pytest.mark.parametrize("char", sorted(GSM7_EXTENSION))
def test_extension_character_at_segment_boundary(char):
    # The pair cannot be split: 152 + 2 > 153, so the first part holds 152.
    info = analyze("a" * 152 + char + "a" * 152)
    assert info.segments == 3
    assert info.remaining_in_segment == 152


def test_segment_info_is_frozen():
    info = analyze("hello")
    with pytest.raises(AttributeError):
        info.segments = 5


def test_basic_table_has_127_characters_without_escape():
    assert len(GSM7_BASIC) == 127
    assert "\x1b" not in GSM7_BASIC
    assert not GSM7_BASIC & GSM7_EXTENSION


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", True),
        ("Hello, world! @ 10:30 50% off $5 & more?", True),
        ("\r\n", True),
        ("{[~^|\\]}" + EURO, True),
        (
            "\u00a3\u00a5\u00a4\u00bf\u00a1\u00c4\u00d6\u00d1\u00dc\u00e4\u00f6\u00f1\u00fc\u00e0",
            True,
        ),
        ("`", False),  # the backtick is not GSM-7
        ("\t", False),
        ("\u00e7", False),  # lower-case c cedilla is not GSM-7 (the upper-case one is)
        ("\u00e1", False),
        (RSQ, False),
        (EMOJI, False),
        (ZHE, False),
        ("\x1b", False),
    ],
)
def test_is_gsm7(text, expected):
    assert is_gsm7(text) is expected


def test_max_body_chars():
    assert MAX_BODY_CHARS == 1600


# --- smart encoding -------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"{LDQ}Hello{RDQ}", '"Hello"'),
        (f"it{RSQ}s", "it's"),
        ("\u2018single\u2019 \u201alow\u201b", "'single' 'low'"),
        ("5\u2032 10\u2033", "5' 10\""),
        ("\u00abbonjour\u00bb \u2039x\u203a", '"bonjour" <x>'),
        ("a\u2013b\u2014c\u2015d\u2010e\u2011f\u2212g", "a-b-c-d-e-f-g"),
        (f"wait{ELLIPSIS}", "wait..."),
        ("a\u00a0b\u2009c\u202fd\u2003e\u3000f", "a b c d e f"),
        ("\u2022 one\n\u2023 two", "- one\n- two"),
        ("a\tb", "a b"),
        ("zero\u200bwidth\ufeff soft\u00adhyphen", "zerowidth softhyphen"),
        ("line\u2028break", "line\nbreak"),
        ("`tick`", "'tick'"),
        ("1\u20442", "1/2"),
        ("e\u0301", "\u00e9"),  # decomposed accent -> GSM-7 precomposed
        ("\u2126", "\u03a9"),  # ohm sign -> Greek Omega (in GSM-7)
    ],
)
def test_smart_encode_replacements(text, expected):
    assert smart_encode(text) == expected
    assert is_gsm7(smart_encode(text))


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Plain GSM text {with} [ext] ~chars~ \u20ac5 ^|\\",
        "\u00c7a \u00e9t\u00e9 \u00e0 \u00a3",
        "a\r\nb\fc",
    ],
)
def test_smart_encode_leaves_gsm7_alone(text):
    assert smart_encode(text) == text


def test_smart_encode_keeps_characters_without_lookalike():
    text = f"{LDQ}Hi{RDQ} {EMOJI} {ZHE}"
    assert smart_encode(text) == f'"Hi" {EMOJI} {ZHE}'
    assert analyze(smart_encode(text)).encoding == "UCS-2"


def test_smart_encode_keeps_zero_width_joiner_in_emoji_sequences():
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
    assert smart_encode(family) == family


def test_smart_encode_turns_curly_text_back_into_gsm7_and_saves_segments():
    text = (
        f"{LDQ}Don{RSQ}t miss out{RDQ} {EM_DASH} our spring sale starts today{ELLIPSIS} "
        "Show this text in store for 20% off everything, including new arrivals and "
        "clearance items."
    )
    before = analyze(text)
    after = analyze(smart_encode(text))
    assert before.encoding == "UCS-2"
    assert before.segments == 3
    assert after.encoding == "GSM-7"
    assert after.segments == 1
    assert smart_encode(text).startswith('"Don\'t miss out" - our spring sale starts today... Show')


def test_smart_replacement_table_only_maps_non_gsm7_to_gsm7():
    from messaging.encoding import _SMART_REPLACEMENTS

    for source, target in _SMART_REPLACEMENTS.items():
        assert not is_gsm7(source), repr(source)
        assert is_gsm7(target), repr(target)
