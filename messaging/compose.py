"""Composing the final body of a message (pure Python, no Django).

The body a recipient gets is ``compose_body(render(template, context), ...)``:
the template is rendered first so that smart encoding also cleans up the
inserted values and the STOP check sees the final text.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any
from urllib.parse import urlsplit

from providers import registry as sms_providers

from .encoding import MAX_BODY_CHARS, analyze, smart_encode
from .templating import TemplateError, render

__all__ = [
    "MAX_MEDIA_URLS",
    "MAX_MEDIA_URL_LENGTH",
    "MAX_TEMPLATE_CHARS",
    "STOP_FOOTER",
    "compose_body",
    "preview",
    "validate_media_urls",
]

STOP_FOOTER = "Reply STOP to opt out"

#: At most this many media attachments per MMS: what every provider takes (providers.registry).
MAX_MEDIA_URLS = sms_providers.max_media()
#: Longest accepted media URL, in characters.
MAX_MEDIA_URL_LENGTH = 2000

_Q = "[\"'\u201c\u201d\u2018\u2019]?"
#: Opt-out wording that makes the footer redundant: "reply STOP", "text STOP to 12345",
#: "STOP to end", "STOP=opt out", "opt out", "opt-out", "unsubscribe". A bare "stop"
#: ("Stop by our store") is not opt-out wording.
_HAS_OPT_OUT_WORDING = re.compile(
    rf"\b(?:reply|text|txt|send|sms)\s+(?:with\s+)?{_Q}stop\b"
    rf"|\bstop{_Q}\s*(?:to|=|:|-)\s*(?:opt|unsub|end|cancel|quit|stop)"
    r"|\bopt[\s_-]?out\b|\bunsubscribe\b",
    re.IGNORECASE,
)
_NEWLINES = re.compile(r"\r\n?")
#: The longest message body (a template, before personalization) anyone may submit: the web composer
#: and the API alike. What may be *sent* is MAX_BODY_CHARS, checked after rendering.
MAX_TEMPLATE_CHARS = 5000
#: Names that never resolve to the public internet (RFC 6761, RFC 8375, common private zones).
INTERNAL_SUFFIXES = frozenset(
    {
        "localhost",
        "local",
        "internal",
        "intranet",
        "lan",
        "home",
        "corp",
        "private",
        "localdomain",
        "invalid",
        "onion",
        "arpa",
        "home.arpa",
    }
)
_HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
_BAD_URL_CHARS = re.compile(r"[\s\x00-\x1f\x7f<>\"]")


def compose_body(body: str, *, add_stop_footer: bool, smart_encoding: bool) -> str:
    """Return the text to send for an (already rendered) body.

    Line breaks are normalised to ``\\n`` (a browser sends ``\\r\\n``, which
    would cost two characters per line break). With ``smart_encoding``,
    Unicode look-alikes are replaced by GSM-7 characters (see
    :func:`messaging.encoding.smart_encode`). With ``add_stop_footer``,
    :data:`STOP_FOOTER` is appended on its own line unless the body already
    has opt-out wording ("reply STOP", "text STOP to …", "STOP to end", "opt
    out", "unsubscribe"; any case), so it is never there twice; a bare "stop"
    ("Stop by our store") still gets the footer. Trailing whitespace of the
    body is dropped first.
    """
    text = _NEWLINES.sub("\n", body)
    if smart_encoding:
        text = smart_encode(text)
    if add_stop_footer and not _HAS_OPT_OUT_WORDING.search(text):
        text = text.rstrip()
        text = f"{text}\n{STOP_FOOTER}" if text else STOP_FOOTER
    return text


def _shorten(url: str, limit: int = 80) -> str:
    return url if len(url) <= limit else url[: limit - 3] + "..."


def _host_problem(host: str) -> str | None:
    """Why ``host`` is not a public domain name a provider could fetch from, or None.

    No IP literals, single-label names, ``localhost`` or internal suffixes: nothing fetches media
    URLs today, but a later feature that does must not be pointed at our own network (SSRF).
    """
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    else:
        return "is an IP address; use a public domain name"
    try:
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError:
        return "is not a valid host name"
    labels = ascii_host.lower().rstrip(".").split(".")
    if len(ascii_host) > 253 or not all(_HOST_LABEL.fullmatch(label) for label in labels):
        return "is not a valid host name"
    if len(labels) < 2 or labels[-1].isdigit() or labels[-1].startswith("0x"):
        return "is not a public domain name"
    if labels[-1] in INTERNAL_SUFFIXES or ".".join(labels[-2:]) in INTERNAL_SUFFIXES:
        return "is a local or internal name"
    return None


def _check_media_url(url: str, number: int) -> None:
    where = f"Media URL #{number}"
    if len(url) > MAX_MEDIA_URL_LENGTH:
        raise ValueError(
            f"{where} is {len(url):,} characters long; the maximum is {MAX_MEDIA_URL_LENGTH:,}: {_shorten(url)}"
        )
    if _BAD_URL_CHARS.search(url):
        raise ValueError(f"{where} contains spaces or characters not allowed in a URL: {url!r}")
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 -- raises ValueError for an invalid port
    except ValueError:
        raise ValueError(f"{where} is not a valid URL: {_shorten(url)}") from None
    if parts.scheme.lower() != "https":
        raise ValueError(f"{where} must use https: {_shorten(url)}")
    if not host:
        raise ValueError(f"{where} has no host name: {_shorten(url)}")
    if parts.username is not None or parts.password is not None:
        raise ValueError(f"{where} must not contain a user name or password: {_shorten(url)}")
    problem = _host_problem(host)
    if problem:
        raise ValueError(f"{where}: the host {host!r} {problem}: {_shorten(url)}")


def validate_media_urls(urls: list[str]) -> list[str]:
    """Validate the media URLs of an MMS and return them cleaned up.

    Surrounding whitespace is stripped and blank entries are dropped. Raises
    :class:`ValueError` with a message naming the offending URL if there are
    more than :data:`MAX_MEDIA_URLS`, if a URL is not a valid ``https`` URL
    with a host name, is longer than :data:`MAX_MEDIA_URL_LENGTH` characters,
    or appears twice.
    """
    if isinstance(urls, str):
        raise ValueError("Media URLs must be given as a list, not a single string.")
    cleaned: list[str] = []
    seen: set[str] = set()
    for number, raw in enumerate(urls, start=1):
        if not isinstance(raw, str):
            raise ValueError(f"Media URL #{number} must be a string, not {type(raw).__name__}.")
        url = raw.strip()
        if not url:
            continue
        _check_media_url(url, number)
        if url in seen:
            raise ValueError(f"Media URL #{number} is a duplicate: {_shorten(url)}")
        seen.add(url)
        cleaned.append(url)
    if len(cleaned) > MAX_MEDIA_URLS:
        raise ValueError(f"Too many media URLs: {len(cleaned)} given, at most {MAX_MEDIA_URLS} are allowed.")
    return cleaned


def preview(
    body: str,
    *,
    sample_context: Mapping[str, object],
    add_stop_footer: bool,
    smart_encoding: bool,
) -> dict[str, Any]:
    """Render and compose ``body`` for one sample recipient and describe the result.

    Returns a dict with ``text`` (the final message), the
    :class:`~messaging.encoding.SegmentInfo` fields (``encoding``,
    ``characters``, ``units``, ``segments``, ``per_segment_limit``,
    ``remaining_in_segment``), ``max_characters`` and ``errors`` (a list of
    human-readable messages; empty when the message can be sent). Template
    syntax errors do not raise: they are reported in ``errors`` and ``text``
    is then the composed but unrendered body.
    """
    errors: list[str] = []
    try:
        rendered = render(body, sample_context)
    except TemplateError as exc:
        errors.append(str(exc))
        rendered = body
    text = compose_body(rendered, add_stop_footer=add_stop_footer, smart_encoding=smart_encoding)
    info = analyze(text)
    if info.characters > MAX_BODY_CHARS:
        errors.append(f"The message is {info.characters:,} characters long; the maximum is {MAX_BODY_CHARS:,}.")
    return {
        "text": text,
        **asdict(info),
        "max_characters": MAX_BODY_CHARS,
        "errors": errors,
    }
