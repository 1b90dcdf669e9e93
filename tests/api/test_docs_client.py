"""The Python client example in docs/api.md runs, as written, against a live server."""

from __future__ import annotations

import re

from django.conf import settings

from campaigns.models import Campaign


def _example() -> str:
    text = (settings.BASE_DIR / "docs" / "api.md").read_text()
    section = text.split("## A Python client", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_docs_client_example_runs_against_a_live_server(live_server, transactional_db, make_user, make_sender):
    from accounts.services import api_token_create

    user = make_user("integrator", role="sender")
    make_sender(user, number="+14155550100")
    _, token = api_token_create(actor=user, user=user, name="docs example")
    exec(compile(_example(), "docs/api.md", "exec"), {"BASE_URL": live_server.url, "TOKEN": token})
    campaign = Campaign.objects.get(name="Welcome")
    assert campaign.status in {"sending", "completed"} and campaign.recipient_total == 1
