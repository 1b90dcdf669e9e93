"""Composing message bodies, media URL checks and the live preview (no database)."""

import sys
from pathlib import Path

# Make the project importable when pytest-django (which would add it) is off.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import pytest

from messaging.compose import (
    MAX_MEDIA_URL_LENGTH,
    MAX_MEDIA_URLS,
    STOP_FOOTER,
    compose_body,
    preview,
    validate_media_urls,
)
from messaging.encoding import MAX_BODY_CHARS, SegmentInfo

LDQ, RDQ, RSQ = "\u201c", "\u201d", "\u2019"
EMOJI = "\U0001f600"

# --- compose_body --------------------------------------------------------------


def test_stop_footer_text():
    assert STOP_FOOTER == "Reply STOP to opt out"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("Sale today!", "Sale today!\nReply STOP to opt out"),
        ("Sale today!\n\n  ", "Sale today!\nReply STOP to opt out"),
        ("", "Reply STOP to opt out"),
        ("Sale! Text STOP to quit", "Sale! Text STOP to quit"),
        ("Sale! Reply stop to end", "Sale! Reply stop to end"),
        ("Sale! Reply Stop.", "Sale! Reply Stop."),
        ("Sale!\nSTOP=opt out", "Sale!\nSTOP=opt out"),
        # Only the whole word counts.
        ("Nonstop deals!", "Nonstop deals!\nReply STOP to opt out"),
        ("Grab a stopwatch", "Grab a stopwatch\nReply STOP to opt out"),
        # Opt-out wording already there: the footer is not added twice.
        ("Sale! Reply STOP to opt out", "Sale! Reply STOP to opt out"),
        ("Sale!\nreply stop to unsubscribe", "Sale!\nreply stop to unsubscribe"),
        ("Sale! Text STOP to 12345", "Sale! Text STOP to 12345"),
        ("Sale! txt stop", "Sale! txt stop"),
        ("Sale! Reply \u201cSTOP\u201d to end", "Sale! Reply \u201cSTOP\u201d to end"),
        ("Sale! STOP to end", "Sale! STOP to end"),
        ("Sale! To opt out, reply STOP.", "Sale! To opt out, reply STOP."),
        ("Sale! Opt-out: example.com/o", "Sale! Opt-out: example.com/o"),
        ("Sale! Opt out anytime", "Sale! Opt out anytime"),
        ("Sale! Unsubscribe at example.com/u", "Sale! Unsubscribe at example.com/u"),
        # "stop" that is not opt-out wording still gets the footer.
        ("Stop by our store today!", "Stop by our store today!\nReply STOP to opt out"),
        ("Last stop: Main St.", "Last stop: Main St.\nReply STOP to opt out"),
        ("Don't stop now", "Don't stop now\nReply STOP to opt out"),
    ],
)
def test_stop_footer(body, expected):
    assert compose_body(body, add_stop_footer=True, smart_encoding=False) == expected


def test_no_footer_when_not_requested():
    assert compose_body("Sale today!", add_stop_footer=False, smart_encoding=False) == "Sale today!"
    assert compose_body("", add_stop_footer=False, smart_encoding=False) == ""


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("a\r\nb", "a\nb"),
        ("a\rb", "a\nb"),
        ("a\r\n\r\nb\n", "a\n\nb\n"),
        ("a\n\rb", "a\n\nb"),
    ],
)
def test_line_breaks_are_normalised(body, expected):
    assert compose_body(body, add_stop_footer=False, smart_encoding=False) == expected


def test_crlf_from_a_browser_costs_one_septet_per_line_break():
    body = "Line one\r\nLine two\r\nLine three"
    composed = compose_body(body, add_stop_footer=False, smart_encoding=False)
    assert len(composed) == len(body) - 2


def test_smart_encoding_is_optional():
    body = f"{LDQ}Hi{RDQ} it{RSQ}s \u2014 us\u2026"
    assert compose_body(body, add_stop_footer=False, smart_encoding=True) == '"Hi" it\'s - us...'
    assert compose_body(body, add_stop_footer=False, smart_encoding=False) == body


def test_smart_encoding_and_footer_together():
    body = f"We{RSQ}re open\u00a0late!\r\n"
    assert compose_body(body, add_stop_footer=True, smart_encoding=True) == "We're open late!\nReply STOP to opt out"


# --- validate_media_urls -----------------------------------------------------------


def test_valid_media_urls_are_returned_cleaned():
    urls = [
        "https://example.com/a.jpg",
        "  https://cdn.example.co.uk:8443/path/b.png?size=large&v=2#x \n",
        "",
        "HTTPS://Example.com/c.gif",
        "https://b\u00fccher.example/d.jpg",
    ]
    assert validate_media_urls(urls) == [
        "https://example.com/a.jpg",
        "https://cdn.example.co.uk:8443/path/b.png?size=large&v=2#x",
        "HTTPS://Example.com/c.gif",
        "https://b\u00fccher.example/d.jpg",
    ]


def test_empty_media_list():
    assert validate_media_urls([]) == []


def test_ten_media_urls_are_allowed_eleven_are_not():
    urls = [f"https://example.com/{i}.jpg" for i in range(11)]
    assert len(validate_media_urls(urls[:MAX_MEDIA_URLS])) == 10
    with pytest.raises(ValueError, match=r"Too many media URLs: 11 given, at most 10"):
        validate_media_urls(urls)


def test_media_url_length_limit():
    base = "https://example.com/"
    longest = base + "a" * (MAX_MEDIA_URL_LENGTH - len(base))
    assert validate_media_urls([longest]) == [longest]
    with pytest.raises(ValueError, match=r"#1 is 2,001 characters long; the maximum is 2,000"):
        validate_media_urls([longest + "a"])


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://example.com/a.jpg", "must use https"),
        ("ftp://example.com/a.jpg", "must use https"),
        ("example.com/a.jpg", "must use https"),
        ("//example.com/a.jpg", "must use https"),
        ("javascript:alert(1)", "must use https"),
        ("https://", "no host name"),
        ("https:///a.jpg", "no host name"),
        ("https://example.com:99999/a.jpg", "not a valid URL"),
        ("https://example.com:abc/a.jpg", "not a valid URL"),
        ("https://[::1/a.jpg", "not a valid URL"),
        ("https://exa mple.com/a.jpg", "spaces or characters not allowed"),
        ("https://example.com/a b.jpg", "spaces or characters not allowed"),
        ("https://example.com/\x00", "spaces or characters not allowed"),
        ("https://user:pw@example.com/a.jpg", "user name or password"),
        ("https://-bad-.com/a.jpg", "not a valid host name"),
        ("https://exa_mple.com/a.jpg", "not a valid host name"),
        ("https://example..com/a.jpg", "not a valid host name"),
        # Public names only (issue 16): no IP literals, internal or single-label names, or localhost.
        ("https://localhost/a.jpg", "not a public domain name"),
        ("https://LOCALHOST./a.jpg", "not a public domain name"),
        ("https://app.localhost/a.jpg", "local or internal name"),
        ("https://printer.local/a.jpg", "local or internal name"),
        ("https://metadata.google.internal/a.jpg", "local or internal name"),
        ("https://router.home.arpa/a.jpg", "local or internal name"),
        ("https://intranet/a.jpg", "not a public domain name"),
        ("https://1.2.3/a.jpg", "not a public domain name"),
        ("https://93.184.216.34/e.jpg", "is an IP address"),
        ("https://127.0.0.1/e.jpg", "is an IP address"),
        ("https://169.254.169.254/latest/meta-data", "is an IP address"),
        ("https://10.0.0.1:8443/e.jpg", "is an IP address"),
        ("https://[::1]/f.jpg", "is an IP address"),
        ("https://[2001:db8::1]/f.jpg", "is an IP address"),
        ("https://[::ffff:127.0.0.1]/f.jpg", "is an IP address"),
        ("https://2130706433/a.jpg", "not a public domain name"),
        ("https://0x7f000001/a.jpg", "not a public domain name"),
        ("https://127.1/a.jpg", "not a public domain name"),
    ],
)
def test_invalid_media_urls(url, message):
    with pytest.raises(ValueError, match=message) as excinfo:
        validate_media_urls(["https://example.com/ok.jpg", url])
    assert "Media URL #2" in str(excinfo.value)


def test_duplicate_media_urls():
    with pytest.raises(ValueError, match=r"Media URL #3 is a duplicate: https://example.com/a.jpg"):
        validate_media_urls(["https://example.com/a.jpg", "https://example.com/b.jpg", " https://example.com/a.jpg"])


def test_media_urls_must_be_strings_in_a_list():
    with pytest.raises(ValueError, match="must be a string"):
        validate_media_urls([None])
    with pytest.raises(ValueError, match="list"):
        validate_media_urls("https://example.com/a.jpg")


def test_long_urls_are_shortened_in_messages():
    url = "http://example.com/" + "x" * 500
    with pytest.raises(ValueError) as excinfo:
        validate_media_urls([url])
    assert len(str(excinfo.value)) < 200


# --- preview -----------------------------------------------------------------------


def test_preview_renders_composes_and_counts():
    result = preview(
        f"Hi {{{{ first_name|default:'there' }}}}, it{RSQ}s sale day!",
        sample_context={"first_name": "Ana"},
        add_stop_footer=True,
        smart_encoding=True,
    )
    text = "Hi Ana, it's sale day!\nReply STOP to opt out"
    assert result == {
        "text": text,
        "encoding": "GSM-7",
        "characters": len(text),
        "units": len(text),
        "segments": 1,
        "per_segment_limit": 160,
        "remaining_in_segment": 160 - len(text),
        "max_characters": MAX_BODY_CHARS,
        "errors": [],
    }


def test_preview_contains_all_segment_info_fields():
    result = preview("x", sample_context={}, add_stop_footer=False, smart_encoding=False)
    for field in SegmentInfo.__dataclass_fields__:
        assert field in result


def test_preview_smart_encodes_inserted_values():
    result = preview(
        "Hello {{ name }}",
        sample_context={"name": f"{LDQ}Bob{RDQ}"},
        add_stop_footer=False,
        smart_encoding=True,
    )
    assert result["text"] == 'Hello "Bob"'
    assert result["encoding"] == "GSM-7"


def test_preview_with_emoji_stays_ucs2():
    result = preview(
        f"Hello {EMOJI} {{{{ name }}}}",
        sample_context={},
        add_stop_footer=False,
        smart_encoding=True,
    )
    assert result["text"] == f"Hello {EMOJI} "
    assert result["encoding"] == "UCS-2"
    assert result["units"] == 9
    assert result["characters"] == 8
    assert result["per_segment_limit"] == 70


def test_preview_footer_counts_towards_segments():
    body = "a" * 150
    without = preview(body, sample_context={}, add_stop_footer=False, smart_encoding=False)
    with_footer = preview(body, sample_context={}, add_stop_footer=True, smart_encoding=False)
    assert without["segments"] == 1
    assert with_footer["segments"] == 2
    assert with_footer["characters"] == 150 + 1 + len(STOP_FOOTER)


def test_preview_length_limit():
    ok = preview("a" * MAX_BODY_CHARS, sample_context={}, add_stop_footer=False, smart_encoding=False)
    assert ok["errors"] == []
    assert ok["segments"] == 11

    too_long = preview("a" * (MAX_BODY_CHARS + 1), sample_context={}, add_stop_footer=False, smart_encoding=False)
    assert too_long["errors"] == ["The message is 1,601 characters long; the maximum is 1,600."]


def test_preview_length_limit_applies_to_rendered_text_with_footer():
    body = "{{ bio }}"
    result = preview(
        body,
        sample_context={"bio": "b" * (MAX_BODY_CHARS - 5)},
        add_stop_footer=True,
        smart_encoding=False,
    )
    assert result["characters"] > MAX_BODY_CHARS
    assert len(result["errors"]) == 1
    assert "maximum is 1,600" in result["errors"][0]


def test_preview_reports_template_errors_instead_of_raising():
    result = preview("Hi {{ name", sample_context={}, add_stop_footer=False, smart_encoding=False)
    assert result["text"] == "Hi {{ name"
    assert len(result["errors"]) == 1
    assert 'Unclosed "{{"' in result["errors"][0]
