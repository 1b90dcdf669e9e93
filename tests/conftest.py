"""Shared fixtures: named users, senders, recipients, a fake provider and real Celery workers."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis as redis_lib
from django.conf import settings

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _clean_state():
    """Each test starts with an empty outbox, cache and rate buckets."""
    from providers.backends import locmem

    locmem.reset()
    redis_lib.Redis.from_url(settings.REDIS_URL).flushdb()
    yield


@pytest.fixture
def make_user(db):
    from accounts.models import User

    def make(username: str, role: str = "sender", **extra):
        return User.objects.create_user(
            username=username,
            email=f"{username}@example.com",
            password="pw-" + username,
            role=role,
            **extra,
        )

    return make


@pytest.fixture
def alice(make_user):
    """An admin."""
    return make_user("alice", role="admin")


@pytest.fixture
def bob(make_user):
    """A sender."""
    return make_user("bob", role="sender")


@pytest.fixture
def carol(make_user):
    """A viewer."""
    return make_user("carol", role="viewer")


@pytest.fixture
def make_sender(db):
    from accounts.models import AuthorizedSender

    def make(user, number: str = "+14155550100", provider: str = "plivo", max_mps: float = 0, **extra):
        return AuthorizedSender.objects.create(user=user, number=number, provider=provider, max_mps=max_mps, **extra)

    return make


@pytest.fixture
def make_recipients(db):
    """``make_recipients(n, list=..., consent="opted_in")`` creates numbers +1415555xxxx (valid US)."""
    from recipients.models import Membership, Recipient, RecipientList

    counter = {"n": 0}

    def make(n: int, *, recipient_list=None, consent: str = "opted_in", start: int | None = None, **attrs):
        base = counter["n"] if start is None else start
        people = [
            Recipient(
                phone=f"+1415{2000000 + base + i:07d}",
                first_name=f"P{base + i}",
                consent_status=consent,
                attributes=attrs,
            )
            for i in range(n)
        ]
        counter["n"] = base + n
        people = Recipient.objects.bulk_create(people)
        if recipient_list is not None:
            if isinstance(recipient_list, str):
                recipient_list, _ = RecipientList.objects.get_or_create(name=recipient_list)
            Membership.objects.bulk_create([Membership(recipient_list=recipient_list, recipient=p) for p in people])
        return people

    return make


@pytest.fixture
def make_campaign(db):
    from campaigns.models import Campaign
    from recipients.models import RecipientList

    def make(user, *, lists=(), senders=(), body: str = "Hello {{ first_name }}", **fields):
        campaign = Campaign.objects.create(name=fields.pop("name", "Spring sale"), body=body, created_by=user, **fields)
        campaign.lists.set(
            [RecipientList.objects.get_or_create(name=lst)[0] if isinstance(lst, str) else lst for lst in lists]
        )
        campaign.senders.set(senders)
        return campaign

    return make


@pytest.fixture
def fake_provider():
    """The fake provider on loopback, in this process (a background thread)."""
    from devtools.fake_provider import FakeProvider

    server = FakeProvider()
    server.start()
    yield server
    # Let callbacks already under way land now, while the test's database is still there: one
    # arriving after the teardown would leave a row in the next test's tables.
    with contextlib.suppress(Exception):
        server.drain(5)
    server.stop()


def plivo_env(fake_provider) -> dict[str, str]:
    """Settings (as environment) that send through the Plivo backend to ``fake_provider``."""
    cfg = fake_provider.config
    return {
        "SMS_BACKEND": "providers.backends.plivo.SMSBackend",
        "PLIVO_API_URL": fake_provider.url,
        "PLIVO_AUTH_ID": cfg.plivo_auth_id,
        "PLIVO_AUTH_TOKEN": cfg.plivo_auth_token,
    }


def aim_plivo(settings, fake_provider) -> None:
    """This process's settings (pytest-django's ``settings``) send through the Plivo backend to ``fake_provider``."""
    for name, value in plivo_env(fake_provider).items():
        setattr(settings, name, value)


def worker_env(**extra: str) -> dict[str, str]:
    """Environment for a child process that must use the test database and Redis."""
    db = settings.DATABASES["default"]
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="smsportal.settings",
        DATABASE_URL=f"postgresql://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        REDIS_URL=settings.REDIS_URL,
        SMS_BACKEND=settings.SMS_BACKEND,
        SMS_RETRY_BASE_SECONDS=str(settings.SMS_RETRY_BASE_SECONDS),
        SMS_SANDBOX_DELAY_SECONDS="0",
        PYTHONUNBUFFERED="1",
    )
    env.pop("SMSPORTAL_TESTING", None)
    env.update(extra)
    return env


class Workers:
    def __init__(self, env: dict[str, str], tmp: Path):
        self.env, self.tmp, self.procs = env, tmp, []

    def start(
        self, *, concurrency: int = 1, beat: bool = False, name: str | None = None, queues: str = ""
    ) -> subprocess.Popen:
        name = name or f"w{len(self.procs)}"
        cmd = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "smsportal",
            "worker",
            "-l",
            "INFO",
            "-c",
            str(concurrency),
            "-n",
            f"{name}@%h",
            "--without-gossip",
            "--without-mingle",
        ]
        if beat:
            cmd += ["-B", "-s", str(self.tmp / "beat-schedule")]
        if queues:
            cmd += ["-Q", queues]
        log = open(self.tmp / f"{name}.log", "wb")
        proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs.append(proc)
        return proc

    def kill(self, proc: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
        os.killpg(proc.pid, sig)
        proc.wait(timeout=30)

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-3000:] for p in sorted(self.tmp.glob("*.log")))


@pytest.fixture
def celery_workers(transactional_db, tmp_path):
    """Start real Celery worker processes against the test database and Redis."""
    workers = Workers(worker_env(), tmp_path)
    yield workers
    workers.stop_all()


def wait_for(predicate, *, timeout: float = 60, interval: float = 0.2, message: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")
