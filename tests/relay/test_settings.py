"""RELAY_* settings come from the environment, and a bad value stops startup naming the variable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PRINT = "import django; django.setup(); from django.conf import settings as s; print(repr(s.{}))"


def _read(setting: str, **env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("RELAY_")}
    environment.update(DJANGO_SETTINGS_MODULE="smsportal.settings", **env)
    return subprocess.run(
        [sys.executable, "-c", PRINT.format(setting)], cwd=ROOT, env=environment, capture_output=True, text=True
    )


def test_relay_texts_and_interval_are_read_from_the_environment():
    assert _read("RELAY_DEFAULT_NAME", RELAY_DEFAULT_NAME="your driver").stdout.strip() == "'your driver'"
    assert _read("RELAY_NO_CONVERSATION_REPLY", RELAY_NO_CONVERSATION_REPLY="").stdout.strip() == "''"
    interval = _read("RELAY_NO_CONVERSATION_REPLY_INTERVAL", RELAY_NO_CONVERSATION_REPLY_INTERVAL="30")
    assert interval.stdout.strip() == "30"


def test_a_bad_interval_stops_startup_naming_the_variable():
    result = _read("RELAY_NO_CONVERSATION_REPLY_INTERVAL", RELAY_NO_CONVERSATION_REPLY_INTERVAL="soon")
    assert result.returncode != 0
    assert "RELAY_NO_CONVERSATION_REPLY_INTERVAL" in result.stderr


def test_the_defaults_need_no_environment(settings):
    assert "{name}" in settings.RELAY_INTRO_MESSAGE
    assert settings.RELAY_NO_CONVERSATION_REPLY_INTERVAL == 600
