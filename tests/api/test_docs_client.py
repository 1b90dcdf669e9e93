"""The client example in docs/api.md runs, as written, with a client that openapi-python-client
generates from a live server's schema, against that server."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import httpx
from django.conf import settings

from campaigns.models import Campaign

GENERATE_OPTIONS = [
    "--path",
    "schema.yaml",
    "--config",
    "client.yaml",
    "--meta",
    "none",
    "--output-path",
    "smsportal_client",
]


def _example() -> str:
    text = (settings.BASE_DIR / "docs" / "api.md").read_text()
    section = text.split("## A Python client", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def _generate(schema: bytes, where: Path) -> None:
    (where / "schema.yaml").write_bytes(schema)
    (where / "client.yaml").write_text("post_hooks: []\n")  # no ruff formatting of the generated code
    done = subprocess.run(
        [sys.executable, "-m", "openapi_python_client", "generate", *GENERATE_OPTIONS],
        cwd=where,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    # The only part it may skip: the raw text/csv body of the import upload (multipart is generated).
    skipped = re.findall(r"WARNING parsing (\S+ \S+)", done.stdout)
    assert skipped in ([], ["POST /api/v1/lists/{id}/imports"]), done.stdout


def test_the_docs_client_example_runs_against_a_live_server(
    live_server, transactional_db, make_user, make_sender, tmp_path, monkeypatch
):
    from accounts.services import api_token_create

    user = make_user("integrator", role="sender")
    make_sender(user, number="+14155550100")
    _, token = api_token_create(actor=user, user=user, name="docs example")
    schema = httpx.get(f"{live_server.url}/api/schema/", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert schema.status_code == 200, schema.text[:500]
    _generate(schema.content, tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        exec(compile(_example(), "docs/api.md", "exec"), {"BASE_URL": live_server.url, "TOKEN": token})
    finally:
        for name in [m for m in sys.modules if m == "smsportal_client" or m.startswith("smsportal_client.")]:
            del sys.modules[name]
    campaign = Campaign.objects.get(name="Welcome")
    assert campaign.status in {"sending", "completed"} and campaign.recipient_total == 1
