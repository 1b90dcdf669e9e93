"""Tracked short links: each URL in a campaign body becomes a short link per recipient.

Codes are 10 characters from [A-Za-z0-9] drawn with ``secrets`` (about 8e17 possible codes):
at 10 million links a guess hits one in about 8e10 tries. Uniqueness is the primary key's,
not luck: a code that collides is simply drawn again. The same (campaign, recipient, URL)
always gets the same link (a unique constraint), so a retried or re-prepared message says
the same thing. A click is one statement: the link's counts and the campaign's click counters
move together; the visitor's IP is never read, only their user agent's category.
"""

from __future__ import annotations

import re
import secrets
import string
from collections.abc import Iterable
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from campaigns.models import CampaignCounter, ShortLink
from campaigns.signals import link_click_wanted, link_clicked

CODE_LENGTH = 10
_ALPHABET = string.ascii_letters + string.digits
CODE = re.compile(rf"[A-Za-z0-9]{{{CODE_LENGTH}}}")
# http(s) URLs up to whitespace or a quote/bracket; trailing punctuation belongs to the sentence.
_URL = re.compile(r"https?://[^\s<>\"'{}|\\^`]+", re.IGNORECASE)
_TRAILING = ".,;:!?)]"
# Counter buckets: every visit; links clicked at least once; recipients who clicked at least one link.
CLICKS, CLICKERS, CLICKING_PEOPLE = "clicks", "clickers", "click_people"


def find_urls(text: str) -> list[str]:
    return [m.group(0).rstrip(_TRAILING) for m in _URL.finditer(text)]


def replace_urls(text: str, links: dict[str, str]) -> str:
    """``text`` with each URL replaced by ``links[url]`` (URLs not in ``links`` stay)."""

    def swap(match: re.Match[str]) -> str:
        url = match.group(0).rstrip(_TRAILING)
        return links.get(url, url) + match.group(0)[len(url) :]

    return _URL.sub(swap, text)


def short_url(code: str) -> str:
    return f"{settings.SHORT_LINK_BASE_URL}/{code}"


def preview_with_short_links(text: str) -> str:
    """What the composer counts: every URL as long as a short link will be."""
    sample = short_url("x" * CODE_LENGTH)
    return replace_urls(text, {url: sample for url in find_urls(text)})


def new_code() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(CODE_LENGTH))


def links_for(wanted: Iterable[tuple[int, int | None, str]]) -> dict[tuple[int, int | None, str], str]:
    """Short URLs for ``(campaign_id, recipient_id, url)``, made if missing; one insert and one read per try."""
    wanted = set(wanted)
    found: dict[tuple[int, int | None, str], str] = {}
    if not wanted:
        return found
    expires = timezone.now() + timedelta(days=settings.SHORT_LINK_DAYS)
    for _ in range(5):  # a colliding code is drawn again on the next pass
        recipients = Q(recipient_id__in={w[1] for w in wanted if w[1] is not None})
        if any(w[1] is None for w in wanted):  # a message whose recipient was deleted or erased
            recipients |= Q(recipient_id__isnull=True)
        rows = (
            ShortLink.objects.filter(recipients)
            .filter(campaign_id__in={w[0] for w in wanted}, target_url__in={w[2] for w in wanted})
            .values_list("campaign_id", "recipient_id", "target_url", "code")
        )
        for campaign_id, recipient_id, url, code in rows:
            if (campaign_id, recipient_id, url) in wanted:
                found[(campaign_id, recipient_id, url)] = short_url(code)
        missing = wanted - found.keys()
        if not missing:
            return found
        ShortLink.objects.bulk_create(
            [
                ShortLink(code=new_code(), campaign_id=c, recipient_id=r, target_url=u, expires_at=expires)
                for c, r, u in missing
            ],
            ignore_conflicts=True,
        )
    raise RuntimeError("could not make short links")  # five collisions in a row: not chance


def user_agent_category(user_agent: str) -> str:
    ua = user_agent.lower()
    if not ua:
        return "unknown"
    if any(w in ua for w in ("bot", "crawl", "spider", "preview", "facebookexternalhit", "slurp", "curl", "python")):
        return "bot"
    if any(w in ua for w in ("iphone", "android", "mobile", "ipad")):
        return "mobile"
    return "desktop"


@dataclass(frozen=True)
class Visit:
    target_url: str | None  # None: the link expired


def _click_sql() -> str:
    link, counter = ShortLink._meta.db_table, CampaignCounter._meta.db_table
    # The click's minute rides on the counter rows, so the campaign page charts clicks over time
    # from the same few squashed rows (campaigns/counters.py), never from the links themselves.
    return (
        # Asynchronous commit, for this transaction only: the 302 does not wait for the WAL flush
        # (most of the redirect's time on a busy disk). A PostgreSQL crash can lose the clicks of its
        # last moments (about 3 x wal_writer_delay, 0.6 s by default) with their link.clicked events;
        # it never corrupts anything, and the visitor was redirected all the same (docs/operations.md).
        "SET LOCAL synchronous_commit TO OFF;"
        f" WITH hit AS (UPDATE {link} SET clicks = clicks + 1,"
        " first_clicked_at = COALESCE(first_clicked_at, %(now)s), last_clicked_at = %(now)s,"
        " user_agent_category = %(ua)s"
        " WHERE code = %(code)s AND (expires_at IS NULL OR expires_at > %(now)s)"
        " RETURNING code, campaign_id, recipient_id, target_url, clicks = 1 AS first),"
        # A person's first click on any of the campaign's links (their other links, by the unique index).
        " person AS (SELECT hit.first AND (hit.recipient_id IS NULL OR NOT EXISTS ("
        f"SELECT 1 FROM {link} o WHERE o.campaign_id = hit.campaign_id AND o.recipient_id = hit.recipient_id"
        " AND o.code <> hit.code AND o.clicks > 0)) AS first FROM hit),"
        f" counted AS (INSERT INTO {counter} (campaign_id, bucket, count, minute)"
        " SELECT hit.campaign_id, b.bucket, 1, date_trunc('minute', %(now)s) FROM hit, person,"
        f" LATERAL (VALUES ('{CLICKS}', true), ('{CLICKERS}', hit.first), ('{CLICKING_PEOPLE}', person.first))"
        " AS b(bucket, wanted) WHERE b.wanted)"
        " SELECT campaign_id, recipient_id, target_url, first FROM hit"
    )


_CLICK_SQL: list[str] = []


def record_click(*, code: str, user_agent: str) -> Visit | None:
    """Count a visit and return where to go; None for an unknown code. Expired links count nothing.

    One transaction: the link's counts, the campaign's click counters and, through
    ``campaigns.signals.link_clicked``, whatever the apps above record of it (the link.clicked event).
    When no app wants the click (``link_click_wanted``), the statement is its own transaction: one
    round trip to PostgreSQL instead of three (BEGIN, the statement, COMMIT).
    """
    if not CODE.fullmatch(code):
        return None
    if not _CLICK_SQL:
        _CLICK_SQL.append(_click_sql())
    now = timezone.now()
    category = user_agent_category(user_agent)
    params: dict[str, Any] = {"now": now, "ua": category, "code": code}
    wanted = any(answer for _, answer in link_click_wanted.send(sender=ShortLink))
    with transaction.atomic() if wanted else nullcontext():
        with connection.cursor() as cursor:
            cursor.execute(_CLICK_SQL[0], params)  # without atomic(): the two statements are one transaction
            cursor.nextset()  # past the SET's empty result
            row = cursor.fetchone()
        if row is not None and wanted:
            campaign_id, recipient_id, target_url, first = row
            link_clicked.send(
                sender=ShortLink,
                campaign_id=campaign_id,
                recipient_id=recipient_id,
                target_url=target_url,
                first=first,
                clicked_at=now,
                user_agent_category=category,
            )
    if row is not None:
        return Visit(target_url=row[2])
    if ShortLink.objects.filter(code=code).exists():
        return Visit(target_url=None)
    return None
