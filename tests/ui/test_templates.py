"""Checks over the templates as a whole: every URL name resolves, flash messages are styled and shown once."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.messages import constants
from django.contrib.messages.storage.base import Message
from django.template.loader import render_to_string
from django.urls import NoReverseMatch, reverse

from campaigns.templatetags.ui import NAV
from recipients.models import RecipientList

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "templates"
APP_CSS = ROOT / "static" / "css" / "app.css"
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


URL_TAG = re.compile(r"""{%\s*url\s+(['"])(?P<name>[^'"]+)\1(?P<rest>.*?)%}""")


def url_tags() -> list[tuple[str, str, list[str], list[str]]]:
    """(template, URL name, positional args, keyword names) for every ``{% url 'literal' ... %}``."""
    found = []
    for path in sorted(TEMPLATES.rglob("*.html")):
        for match in URL_TAG.finditer(path.read_text()):
            bits = match["rest"].split()
            if len(bits) >= 2 and bits[-2] == "as":
                bits = bits[:-2]
            args = [b for b in bits if "=" not in b]
            kwargs = [b.split("=", 1)[0] for b in bits if "=" in b]
            found.append((str(path.relative_to(TEMPLATES)), match["name"], args, kwargs))
    return found


def test_the_url_tag_walk_sees_the_templates():
    names = {name for _, name, _, _ in url_tags()}
    assert {"account_logout", "recipients:inbox", "recipients:recipient_detail", "campaign_status"} <= names


@pytest.mark.parametrize(
    ("template", "name", "args", "kwargs"), [pytest.param(*tag, id=f"{tag[0]}:{tag[1]}") for tag in url_tags()]
)
def test_every_url_name_in_the_templates_resolves(template, name, args, kwargs):
    """Dummy ints stand in for the arguments; the pattern must accept as many as the tag passes."""
    try:
        reverse(name, args=[1] * len(args)) if args else reverse(name, kwargs=dict.fromkeys(kwargs, 1))
    except NoReverseMatch as exc:
        pytest.fail(f"templates/{template}: {{% url '{name}' %}} does not resolve: {exc}")


@pytest.mark.parametrize(("key", "label", "name", "admin_only"), NAV, ids=[entry[0] for entry in NAV])
def test_every_navigation_entry_resolves(key, label, name, admin_only):
    assert reverse(name).startswith("/")


def css_classes() -> set[str]:
    """Every class name that appears in a selector of app.css (declarations are not selectors)."""
    css = re.sub(r"/\*.*?\*/", "", APP_CSS.read_text(), flags=re.DOTALL)
    preludes = re.findall(r"([^{}]+)\{", css)
    return {name for prelude in preludes for name in re.findall(r"\.(-?[_a-zA-Z][\w-]*)", prelude)}


class _Wrappers(HTMLParser):
    """The elements inside <main> that enclose a given text: (tag, classes, role) from the outside in."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text, self.stack, self.found = text, [], []

    def handle_starttag(self, tag, attrs):
        if tag not in VOID:
            attrs = dict(attrs)
            self.stack.append((tag, (attrs.get("class") or "").split(), attrs.get("role")))

    def handle_endtag(self, tag):
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][0] == tag:
                del self.stack[i:]
                break

    def handle_data(self, data):
        if self.text in data and not self.found:
            tags = [entry[0] for entry in self.stack]
            if "main" in tags:
                self.found = self.stack[tags.index("main") + 1 :]


def flash_markup(html: str, text: str) -> list[tuple[str, list[str], str | None]]:
    parser = _Wrappers(text)
    parser.feed(html)
    assert parser.found, f"{text!r} is not shown inside <main>"
    return parser.found


def assert_styled(html: str, text: str, role: str) -> None:
    markup = flash_markup(html, text)
    used = {name for _, classes, _ in markup for name in classes}
    assert "flash" in used
    unstyled = used - css_classes()
    assert not unstyled, f"flash message {text!r} uses classes that static/css/app.css never styles: {unstyled}"
    assert role in {r for _, _, r in markup}, f"flash message {text!r} has no role={role!r}"


def test_the_css_parser_finds_selectors_not_values():
    found = css_classes()
    assert {"flash", "flashes", "table-wrap", "c-sent", "compose"} <= found
    assert not {"16", "4s", "messages"} & found


def test_a_flashed_success_is_styled_and_announced(client, bob, make_recipients):
    (person,) = make_recipients(1)
    client.force_login(bob)
    response = client.post(reverse("recipients:recipient_opt_out", args=[person.pk]), follow=True)
    assert_styled(response.content.decode(), "Opted out.", role="status")


def test_a_flashed_error_is_styled_and_announced_as_an_alert(client, bob):
    recipient_list = RecipientList.objects.create(name="customers", created_by=bob)  # bob's own: he may rename it
    client.force_login(bob)
    response = client.post(reverse("recipients:list_rename", args=[recipient_list.pk]), {"name": ""}, follow=True)
    assert_styled(response.content.decode(), "Enter a name.", role="alert")


@pytest.mark.parametrize(
    ("level", "role"),
    [
        (constants.INFO, "status"),
        (constants.SUCCESS, "status"),
        (constants.WARNING, "status"),
        (constants.ERROR, "alert"),
    ],
)
def test_every_level_the_site_shows_has_a_style(level, role):
    assert level >= getattr(settings, "MESSAGE_LEVEL", constants.INFO)
    html = render_to_string("_messages.html", {"messages": [Message(level, "Something happened.")]})
    assert_styled(f"<main>{html}</main>", "Something happened.", role=role)


def test_flash_messages_are_shown_by_one_partial_only():
    loops = re.compile(r"{%\s*for\s+\w+\s+in\s+messages\s*%}")
    showing = sorted(str(p.relative_to(TEMPLATES)) for p in TEMPLATES.rglob("*.html") if loops.search(p.read_text()))
    assert showing == ["_messages.html"]
    assert '{% include "_messages.html" %}' in (TEMPLATES / "base.html").read_text()
