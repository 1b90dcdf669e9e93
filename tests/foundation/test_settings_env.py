"""Settings come from the environment through typed helpers that fail loudly."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from smsportal import env
from smsportal.logging import JsonFormatter, MaskPhoneNumbersFilter, mask_phone

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("raw", "expected"), [("true", True), ("0", False), ("Yes", True), ("off", False)])
def test_env_bool_reads_common_spellings(monkeypatch, raw, expected):
    monkeypatch.setenv("SOME_FLAG", raw)
    assert env.env_bool("SOME_FLAG", not expected) is expected


@pytest.mark.parametrize(
    ("helper", "raw"),
    [
        (lambda: env.env_bool("X_VAR", False), "maybe"),
        (lambda: env.env_int("X_VAR", 1), "ten"),
        (lambda: env.env_float("X_VAR", 1.0), "fast"),
    ],
)
def test_bad_values_name_the_variable(monkeypatch, helper, raw):
    monkeypatch.setenv("X_VAR", raw)
    with pytest.raises(ImproperlyConfigured, match="X_VAR"):
        helper()


def test_env_int_enforces_minimum(monkeypatch):
    monkeypatch.setenv("X_VAR", "0")
    with pytest.raises(ImproperlyConfigured, match="at least 1"):
        env.env_int("X_VAR", 5, minimum=1)


def test_secret_from_file(monkeypatch, tmp_path):
    secret = tmp_path / "token"
    secret.write_text("s3cret\n")
    monkeypatch.delenv("API_TOKEN", raising=False)
    monkeypatch.setenv("API_TOKEN_FILE", str(secret))
    assert env.env_secret("API_TOKEN") == "s3cret"
    monkeypatch.setenv("API_TOKEN", "other")
    with pytest.raises(ImproperlyConfigured, match="only one"):
        env.env_secret("API_TOKEN")


def test_missing_required_secret_is_an_error(monkeypatch):
    monkeypatch.delenv("NEEDED_SECRET", raising=False)
    monkeypatch.delenv("NEEDED_SECRET_FILE", raising=False)
    with pytest.raises(ImproperlyConfigured, match="NEEDED_SECRET"):
        env.env_secret("NEEDED_SECRET")


def _manage(*args, **extra_env):
    environment = {
        k: v for k, v in os.environ.items() if not k.startswith(("SMS", "PLIVO", "FLOWROUTE", "DJANGO_ALLOW_ASYNC"))
    }
    environment.update(DJANGO_SETTINGS_MODULE="smsportal.settings", SMSPORTAL_VAR_DIR=str(extra_env.pop("var")))
    environment.update(extra_env)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120
    )


def test_an_invalid_env_value_stops_startup_naming_the_variable(tmp_path):
    result = _manage("check", var=tmp_path, SMS_MAX_IN_FLIGHT="lots")
    assert result.returncode != 0
    assert "SMS_MAX_IN_FLIGHT" in result.stderr


def test_production_mode_passes_check_deploy_without_warnings(tmp_path):
    result = _manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        var=tmp_path,
        PRODUCTION="true",
        SECRET_KEY="x" * 20 + "a-long-random-production-secret-key-value-1234567890",
        ALLOWED_HOSTS="sms.example.org",
        PUBLIC_BASE_URL="https://sms.example.org",
        FLOWROUTE_WEBHOOK_SECRET="a-long-unguessable-secret",
        DATABASE_URL=os.environ["DATABASE_URL"],  # the suite's servers (nothing connects in `check`)
        REDIS_URL=os.environ["REDIS_URL"],
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "WARNINGS" not in result.stdout + result.stderr


def test_production_mode_requires_a_secret_key(tmp_path):
    environment_var = {"PRODUCTION": "true", "ALLOWED_HOSTS": "sms.example.org"}
    result = _manage("check", var=tmp_path, **environment_var)
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("sending to +14155550123 now", "sending to +*******0123 now"),
        ("from 4155550123", "from ******0123"),
        ("campaign 42 has 1000 rows", "campaign 42 has 1000 rows"),
    ],
)
def test_logs_mask_phone_numbers(text, masked):
    assert mask_phone(text) == masked


def test_json_log_lines_are_masked(caplog):
    import json
    import logging

    record = logging.LogRecord("smsportal", logging.INFO, __file__, 1, "opt-out from %s", ("+447700900123",), None)
    MaskPhoneNumbersFilter().filter(record)
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "opt-out from +********0123"
    assert line["level"] == "INFO"
