"""End to end in headless Chromium: sign in, compose, launch, watch progress, pause and resume.

Playwright's sync API runs in the test thread; Django's live server thread
serves the pages. Launch runs with Celery tasks queued (not eager) so the
campaign visibly waits at 0%; the test then runs the sweeper eagerly, which
sends through the locmem backend, and the page's 2-second poll shows 100%.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from django.urls import reverse

from campaigns.models import Campaign
from campaigns.tasks import run_sweep
from providers.backends import locmem

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHROMIUM = "/usr/bin/chromium"
SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def chromium():
    if not os.path.exists(CHROMIUM):
        pytest.fail("Debian's chromium is not installed: run scripts/install (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop in this thread; the ORM calls the test makes are still synchronous.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            yield browser
            browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def page(chromium, live_server):
    context = chromium.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def celery_eager():
    """Switch eager task execution on and off mid-test; restored afterwards.

    The switch goes into Celery's own overrides (``app.conf.changes``), which win over Django settings,
    so it is taken out again rather than set back: a value left there would make every later test's
    ``settings.CELERY_TASK_ALWAYS_EAGER`` ineffective (tests/recipients/test_stop_mid_campaign.py ran
    its tasks in-process after the browser tests).
    """
    from smsportal.celery import app

    changes = app.conf.changes
    had, before = "task_always_eager" in changes, changes.get("task_always_eager")

    def set_eager(value: bool) -> None:
        app.conf.task_always_eager = value

    yield set_eager
    if had:
        changes["task_always_eager"] = before
    else:
        changes.pop("task_always_eager", None)


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def sign_in(page, username: str) -> None:
    page.goto("/accounts/login/")
    page.fill("input[name=login]", username)
    page.fill("input[name=password]", "pw-" + username)
    page.click("#password-login button[type=submit]")
    page.wait_for_url(re.compile(r"/$"))


def expect_text(page, selector: str, text: str, timeout: float = 15_000) -> None:
    from playwright.sync_api import expect

    expect(page.locator(selector)).to_have_text(text, timeout=timeout)


CSV = (
    "phone,first_name,city,consent,consent_evidence,consent_at\n"
    + "".join(
        f"+1415300000{i},{name},Oakland,opted_in,signed up at the counter,2026-05-01\n"
        for i, name in enumerate(["Ann", "Ben", "Cy", "Di", "Ed", "Flo"])
    )
    + "+14153000006,Gus,Oakland,opted_out,,\n+14153000007,Hal,Oakland,opted_out,,\n"
    + "not-a-number,Ivy,Oakland,opted_in,signed up at the counter,2026-05-01\n"
)


def upload(page, list_pk: int, name: str, content: str) -> None:
    """The import page: upload, then (a readable file) the column mapping and preview, then run."""
    page.goto(reverse("recipients:list_detail", args=[list_pk]))
    page.get_by_role("link", name="Import a CSV").click()
    page.set_input_files("input[name=file]", files=[{"name": name, "mimeType": "text/csv", "buffer": content.encode()}])
    page.get_by_role("button", name="Upload").click()
    page.locator("button[name=run], .error").first.wait_for()
    if page.locator("button[name=run]").count():
        page.get_by_role("button", name="Import", exact=True).click()


def test_compose_launch_and_watch_progress(page, bob, make_sender, celery_eager):
    from recipients.models import InboundMessage, RecipientList

    sender = make_sender(bob, label="Main line")
    customers = RecipientList.objects.create(name="customers", created_by=bob)
    InboundMessage.objects.create(
        provider="plivo", sender="+14152000001", to=sender.number, text="Thanks, see you there!"
    )
    InboundMessage.objects.create(
        provider="plivo", sender="+14152000002", to=sender.number, text="STOP", kind="opt_out"
    )
    InboundMessage.objects.create(
        provider="plivo",
        sender="+14152000003",
        to=sender.number,
        text="Here is my receipt",
        media_urls=["https://media.example/receipt.jpg"],
    )

    sign_in(page, "bob")
    # Upload the recipients: the import page shows progress and the per-row report.
    upload(page, customers.pk, "customers.csv", CSV)
    page.get_by_text("not-a-number").wait_for()
    assert customers.memberships.count() == 8
    shot(page, "import-report")
    # A file that is not a usable CSV is refused with a visible error.
    upload(page, customers.pk, "photo.csv", "\x00\x01 just some bytes, no header\n")
    error = page.locator(".error, [role=alert]").first
    error.wait_for()
    assert "CSV" in error.inner_text()
    shot(page, "import-error")

    page.goto("/")
    page.get_by_role("link", name="New campaign").click()
    page.fill("#id_name", "Spring sale")
    page.get_by_label("Main line").check()
    page.get_by_label("customers").check()
    page.fill("#id_body", "Hi {{ first_name }}, 20% off in {{ city }} this week!")
    # The live preview personalizes for the first opted-in member and counts the audience.
    expect_text(page, "[data-testid=preview-text]", "Hi Ann, 20% off in Oakland this week!\nReply STOP to opt out")
    expect_text(page, "[data-testid=encoding]", "GSM-7")
    expect_text(page, "[data-testid=audience]", re.compile(r"6 opted-in recipients"))
    shot(page, "composer")

    page.get_by_role("button", name="Review and launch…").click()
    expect_text(page, "[data-testid=confirm-audience]", re.compile(r"^6 opted-in people in customers"))
    shot(page, "confirm")

    celery_eager(False)  # launch queues its work; nothing is sent yet
    page.get_by_role("button", name=re.compile(r"Launch now")).focus()
    page.keyboard.press("Enter")  # keyboard only
    expect_text(page, "[data-testid=status]", "Sending")
    expect_text(page, "[data-testid=percent]", "0.0%")
    assert locmem.outbox == []

    celery_eager(True)
    run_sweep()  # creates the rows and sends them through locmem
    expect_text(page, "[data-testid=percent]", "100.0%")
    assert len(locmem.outbox) == 6
    run_sweep()  # notices nothing is open any more
    expect_text(page, "[data-testid=status]", "Completed")
    assert page.get_by_role("progressbar").get_attribute("aria-valuenow") == "100.0"
    # The log and the chart refresh on their own, without a reload.
    from playwright.sync_api import expect

    expect(page.locator("#log tbody tr")).to_have_count(6)
    expect(page.locator(".chart rect.c-sent")).not_to_have_count(0)
    shot(page, "campaign-detail")

    page.get_by_role("link", name="Dashboard").click()
    page.get_by_text("Spring sale").first.wait_for()
    page.get_by_text("6 campaign messages in the last 14 days").wait_for()
    shot(page, "dashboard")

    page.get_by_role("link", name="Inbox").click()
    page.get_by_text("Thanks, see you there!").wait_for()
    receipt = page.get_by_role("link", name="Attachment 1")
    assert receipt.get_attribute("href") == "https://media.example/receipt.jpg"
    page.get_by_label("Search number or text").fill("2000002")
    page.get_by_role("button", name="Search").click()
    assert page.get_by_text("Thanks, see you there!").count() == 0
    page.goto("/inbox")
    shot(page, "inbox")

    page.get_by_role("link", name="Lists", exact=True).click()
    page.get_by_role("heading", name="Lists", exact=True).wait_for()
    shot(page, "lists")


def test_pause_and_resume_from_the_detail_page(page, bob, make_sender, make_recipients, make_campaign, celery_eager):
    make_recipients(4, recipient_list="members")
    campaign = make_campaign(
        bob, lists=["members"], senders=[make_sender(bob, max_mps=1)], name="Rate-limited news", body="News for you"
    )
    sign_in(page, "bob")
    page.goto(f"/campaigns/{campaign.pk}")
    page.get_by_role("link", name="Review and launch…").click()
    celery_eager(False)
    page.get_by_role("button", name=re.compile(r"Launch now")).click()
    expect_text(page, "[data-testid=status]", "Sending")

    # Keyboard only: focus survives the 2-second poll, and Enter presses the button.
    page.locator("#btn-pause").focus()
    page.wait_for_timeout(2500)
    assert page.evaluate("document.activeElement.id") == "btn-pause"
    page.keyboard.press("Enter")
    expect_text(page, "[data-testid=status]", "Paused")
    page.get_by_text("Campaign paused.").wait_for()
    assert page.get_by_role("button", name="Pause").count() == 0
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.PAUSED

    page.locator("#btn-resume").focus()
    page.keyboard.press("Enter")
    expect_text(page, "[data-testid=status]", "Sending")
    celery_eager(True)
    run_sweep()
    expect_text(page, "[data-testid=percent]", "100.0%")
    assert sorted(m.body for m in locmem.outbox) == ["News for you\nReply STOP to opt out"] * 4  # footer is on


def test_viewer_sees_no_compose_or_action_buttons(page, carol, bob, make_sender, make_recipients, make_campaign):
    make_recipients(2, recipient_list="members")
    campaign = make_campaign(bob, lists=["members"], senders=[make_sender(bob)], name="Read only")
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.SENDING)
    sign_in(page, "carol")
    assert page.get_by_role("link", name="New campaign").count() == 0
    page.goto(f"/campaigns/{campaign.pk}")
    expect_text(page, "[data-testid=status]", "Sending")
    assert page.get_by_role("button", name="Pause").count() == 0
    assert page.get_by_role("button", name="Cancel campaign").count() == 0


def test_composer_shows_clear_errors(page, bob, make_sender, make_recipients):
    make_sender(bob, label="Main line")
    make_recipients(1, recipient_list="customers")
    sign_in(page, "bob")
    page.goto("/campaigns/new")
    page.fill("#id_name", "Broken")
    page.fill("#id_body", "Hello")
    page.fill("#id_media_urls", "http://example.com/cat.jpg")
    page.get_by_role("button", name="Review and launch…").click()
    summary = page.locator("#error-summary")
    summary.wait_for()
    text = summary.inner_text()
    assert "Choose at least one sender number." in text
    assert "Choose at least one recipient list." in text
    assert "must use https" in text
    assert page.locator("#id_media_urls").get_attribute("aria-invalid") == "true"
    shot(page, "composer-errors")


# --- Every staff page: axe-core, phone width, screenshots -------------------------------------
AXE = Path(__file__).resolve().parent / ".node" / "node_modules" / "axe-core" / "axe.min.js"
AXE_URL = "/__test__/axe.min.js"
WIDTHS = {"1280": {"width": 1280, "height": 900}, "390": {"width": 390, "height": 844}}
BLOCKING = {"serious", "critical"}
# At phone width only what the narrower layout can change is checked again (the rest ran at 1280).
PHONE_RULES = {
    "runOnly": {
        "type": "rule",
        "values": ["scrollable-region-focusable", "color-contrast", "meta-viewport", "region"],
    }
}
AXE_RUN = """async (options) => {
  const result = await axe.run(document, {resultTypes: ["violations"], ...options});
  return result.violations.map(v => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.slice(0, 3).map(n => n.target.join(" ") + " :: " + (n.failureSummary || "").split("\\n")[1]),
  }));
}"""


def _axe(page, options: dict | None = None) -> list[dict]:
    page.add_script_tag(url=AXE_URL)
    return page.evaluate(AXE_RUN, options or {})


def _staff_world(bob, celery_eager):
    """The demo runportal seeds, launched and finished, plus one of everything else a staff member opens."""
    from django.core.management import call_command

    from accounts.models import User
    from campaigns.services import campaign_launch
    from providers.errors import InvalidRecipient
    from recipients.models import ImportJob, InboundMessage, RecipientList
    from relay.models import RelayNumber
    from relay.services import conversation_create

    call_command("seed_demo", password="pw-admin", stdout=open(os.devnull, "w"))
    admin = User.objects.get(username="admin")
    demo = Campaign.objects.get(name="Welcome (demo)")
    locmem.fail_numbers["+14155550666"] = InvalidRecipient("Number is not reachable", code="21614")
    celery_eager(True)
    campaign_launch(campaign=demo, user=admin)
    run_sweep()
    run_sweep()
    demo_list = RecipientList.objects.get(name="Demo list")
    draft = Campaign.objects.create(name="Spring news", body="Hi {{ first_name }}", created_by=admin)
    draft.lists.set([demo_list])
    draft.senders.set(admin.sender_grants.all())
    inbound = InboundMessage.objects.create(
        provider="plivo",
        sender="+14155550101",
        to="+14155550100",
        text="Here is my receipt",
        media_urls=["https://media.example/receipt.jpg"],
    )
    job = ImportJob.objects.create(
        recipient_list=demo_list,
        created_by=admin,
        file="imports/none.csv",
        original_name="members.csv",
        status=ImportJob.Status.COMPLETED,
    )
    for i in range(2):
        RelayNumber.objects.create(number=f"+1415555{900 + i:04d}", provider="plivo", label=f"relay {i}")
    conversation = conversation_create(participant_a="+14155551201", participant_b="+14155551202")
    return [
        ("dashboard", reverse("dashboard")),
        ("campaigns", reverse("campaign_list")),
        ("composer", reverse("campaign_new")),
        ("composer-edit", reverse("campaign_edit", args=[draft.pk])),
        ("confirm", reverse("campaign_confirm", args=[draft.pk])),
        ("campaign-detail", reverse("campaign_detail", args=[demo.pk])),
        ("lists", reverse("recipients:list_index")),
        ("list-detail", reverse("recipients:list_detail", args=[demo_list.pk])),
        ("recipient", reverse("recipients:recipient_detail", args=[demo_list.members.order_by("pk").first().pk])),
        ("import-detail", reverse("recipients:import_detail", args=[job.pk])),
        ("inbox", reverse("recipients:inbox")),
        ("inbox-reply", reverse("recipients:inbox_reply", args=[inbound.pk])),
        ("senders", reverse("accounts:senders")),
        ("sender-new", reverse("accounts:sender_create")),
        ("tokens", reverse("accounts:tokens")),
        ("users", reverse("accounts:users")),
        ("user-invite", reverse("accounts:user_invite")),
        ("user-edit", reverse("accounts:user_edit", args=[bob.pk])),
        ("audit", reverse("accounts:audit")),
        ("relay", reverse("relay:list")),
        ("relay-detail", reverse("relay:detail", args=[conversation.pk])),
        ("admin", "/admin/"),
        ("admin-campaigns", "/admin/campaigns/campaign/"),
    ]


def test_every_staff_page_is_accessible_and_fits_a_phone(chromium, live_server, bob, celery_eager):
    """axe-core on every page a staff member uses, at 1280 and 390 px; no page scrolls sideways on a phone."""
    if not AXE.exists():
        pytest.fail(f"axe-core is not installed at {AXE}: run bash scripts/test-setup")
    pages = _staff_world(bob, celery_eager)
    problems: list[str] = []
    for width, viewport in WIDTHS.items():
        context = chromium.new_context(base_url=live_server.url, viewport=viewport, bypass_csp=True)
        context.set_default_timeout(15_000)
        # axe comes from one cacheable URL, so Chromium compiles it once, not on every page.
        context.route(
            "**" + AXE_URL,
            lambda route: route.fulfill(
                path=str(AXE), content_type="text/javascript", headers={"Cache-Control": "max-age=3600"}
            ),
        )
        page = context.new_page()
        try:
            page.goto("/accounts/login/")
            if width == "1280":  # the password box is as wide as the username box
                boxes = [page.locator(f"input[name={n}]").bounding_box() for n in ("login", "password")]
                assert boxes[0]["width"] == boxes[1]["width"], boxes
            problems += [f"login @{width}: {v}" for v in _axe(page) if v["impact"] in BLOCKING]
            shot(page, f"login-{width}")
            sign_in(page, "admin")
            for name, url in pages:
                page.goto(url)
                for v in _axe(page, PHONE_RULES if width == "390" else None):
                    if v["impact"] in BLOCKING:
                        problems.append(f"{name} @{width}: {v}")
                overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
                if overflow > 0:
                    problems.append(f"{name} @{width}: the page is {overflow}px wider than the screen")
                shot(page, f"{name}-{width}")
        finally:
            context.close()
    assert problems == [], "\n".join(problems)
