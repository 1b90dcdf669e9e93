"""scripts/audit: a finding fails CI, an unreachable database is a plain warning, never a clean bill."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import subprocess
import sys

from tests.conftest import ROOT

SCRIPT = ROOT / "scripts" / "audit"


def _load():
    loader = importlib.machinery.SourceFileLoader("scripts_audit", str(SCRIPT))
    spec = importlib.util.spec_from_loader("scripts_audit", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


audit = _load()
SKIPPED = {"name": "six", "skip_reason": "Dependency not found on PyPI and could not be audited: six (1.17.0)"}


def test_a_known_vulnerability_fails():
    report = {
        "dependencies": [
            {"name": "django", "version": "4.2.0", "vulns": [{"id": "PYSEC-2023-100", "fix_versions": ["4.2.2"]}]},
            {"name": "celery", "version": "5.7.0", "vulns": []},
        ]
    }
    status, lines = audit.judge(report, "osv")
    assert status == 1
    assert "VULNERABLE django==4.2.0: PYSEC-2023-100 (fixed in: 4.2.2)" in lines


def test_a_database_that_audited_nothing_is_not_a_clean_result():
    status, lines = audit.judge({"dependencies": [SKIPPED, {**SKIPPED, "name": "vine"}]}, "pypi")
    assert status is None  # try the next database, then warn
    assert "audited none of 2 packages" in lines[0]
    assert not any("no known vulnerabilities" in line for line in lines)


def test_a_clean_result_names_what_was_not_audited():
    status, lines = audit.judge(
        {"dependencies": [{"name": "celery", "version": "5.7.0", "vulns": []}, SKIPPED]}, "pypi"
    )
    assert status == 0
    assert lines[0] == "no known vulnerabilities in the 1 audited packages (database: pypi)"
    assert "1 of 2 packages were NOT audited (six)" in lines[1]


def test_unreachable_databases_warn_plainly_and_do_not_fail(tmp_path):
    lock = tmp_path / "requirements.lock"
    lock.write_text("django==4.2.0\n")
    # Every request goes to a proxy that refuses connections: no database can be reached.
    # One database is enough to show the outcome (each costs seconds of pip-audit start-up and retries).
    env = {
        **os.environ,
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "HTTP_PROXY": "http://127.0.0.1:9",
        "NO_PROXY": "",
        "AUDIT_SERVICES": "osv",
    }
    env.pop("AUDIT_STRICT", None)
    run = subprocess.run(
        [sys.executable, str(SCRIPT), str(lock)], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "no vulnerability database could be reached" in run.stdout
    assert "NOT audited" in run.stdout
    assert "no known vulnerabilities" not in run.stdout.lower()

    # AUDIT_STRICT=1 turns the warning into a failure (no database asked here: the same outcome, at once).
    strict = subprocess.run(
        [sys.executable, str(SCRIPT), str(lock)],
        env={**env, "AUDIT_STRICT": "1", "AUDIT_SERVICES": ""},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert strict.returncode == 2 and "NOT audited" in strict.stdout
