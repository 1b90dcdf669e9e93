"""The docker compose deployment: docker-compose.yml, Dockerfile, .dockerignore, deploy/Caddyfile.

No Docker engine runs here, so the files are parsed, and whatever runs without an engine is run:
the Dockerfile's collectstatic step, the web health check against production settings built from
the compose environment, beat's heartbeat, and `docker compose config` when a compose CLI exists.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path, PurePosixPath

import pytest
import yaml

from smsportal import healthcheck

ROOT = Path(__file__).resolve().parents[2]
LONG_RUNNING = ("web", "worker", "beat", "proxy")


# --- reading the files ----------------------------------------------------------
def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _dotenv(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def _service_environment(compose: dict, name: str) -> dict[str, str]:
    """What a container of the service sees: env_file (.env, as .env.example has it), then environment."""
    service = compose["services"][name]
    env = _dotenv(ROOT / ".env.example") if service.get("env_file") else {}
    env.update({key: str(value) for key, value in (service.get("environment") or {}).items()})
    return env


def _app_services(compose: dict) -> list[str]:
    return [name for name, service in compose["services"].items() if service.get("image") == "smsportal:latest"]


def _volume_targets(service: dict) -> list[PurePosixPath]:
    targets = []
    for volume in service.get("volumes") or []:
        target = volume["target"] if isinstance(volume, dict) else volume.split(":")[1]
        targets.append(PurePosixPath(target))
    return targets


def _dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined and comments dropped."""
    instructions, parts = [], []
    for raw in (ROOT / "Dockerfile").read_text().splitlines():
        line = raw.strip()
        if line.startswith("#") or (not line and not parts):
            continue
        if line.endswith("\\"):
            parts.append(line[:-1].strip())
            continue
        parts.append(line)
        keyword, _, arguments = " ".join(p for p in parts if p).partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        parts = []
    return instructions


def _dockerfile_env() -> dict[str, str]:
    env = {}
    for keyword, arguments in _dockerfile():
        if keyword == "ENV":
            env.update(item.split("=", 1) for item in shlex.split(arguments))
    return env


def _collectstatic_step() -> str:
    steps = [args for keyword, args in _dockerfile() if keyword == "RUN" and "collectstatic" in args]
    assert len(steps) == 1, "the Dockerfile collects static files in exactly one RUN step"
    return steps[0]


# --- Caddyfile: a small parser, enough for nesting, snippets and sizes -------------
def _caddyfile(text: str) -> list[dict]:
    root: list[dict] = []
    stack = [root]
    for raw in text.splitlines():
        tokens = shlex.split(raw, comments=True)
        if not tokens:
            continue
        if tokens == ["}"]:
            stack.pop()
            continue
        opens = tokens[-1] == "{"
        words = tokens[:-1] if opens else tokens
        node = {"name": words[0] if words else "{global}", "args": words[1:], "children": []}
        stack[-1].append(node)
        if opens:
            stack.append(node["children"])
    assert stack == [root], "unbalanced braces in the Caddyfile"
    snippets = {n["name"][1:-1]: n["children"] for n in root if n["name"].startswith("(")}

    def expand(nodes: list[dict]) -> list[dict]:
        out = []
        for node in nodes:
            if node["name"] == "import" and node["args"][0] in snippets:
                out.extend(expand(snippets[node["args"][0]]))
            else:
                out.append({**node, "children": expand(node["children"])})
        return out

    return expand([n for n in root if not n["name"].startswith("(")])


def _walk(nodes: list[dict], parents: tuple = ()):
    for node in nodes:
        yield node, parents
        yield from _walk(node["children"], (*parents, node))


def _child(node: dict, name: str) -> dict | None:
    return next((c for c in node["children"] if c["name"] == name), None)


_UNITS = {"": 1, "b": 1, "kb": 10**3, "kib": 2**10, "mb": 10**6, "mib": 2**20, "gb": 10**9, "gib": 2**30}


def _size(text: str) -> int:
    """A go-humanize size, as Caddy reads it (MB is 10**6 bytes, MiB 2**20)."""
    number, unit = re.fullmatch(r"([0-9.]+)\s*([A-Za-z]*)", text).groups()
    return int(float(number) * _UNITS[unit.lower()])


# --- .dockerignore: Docker's matching, closely enough -------------------------------
def _dockerignore_rules() -> list[tuple[bool, re.Pattern]]:
    rules = []
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = line.lstrip("!").strip().strip("/")
        regex, i = "", 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                regex, i = regex + "(?:.*/)?", i + 3
            elif pattern.startswith("**", i):
                regex, i = regex + ".*", i + 2
            elif pattern[i] == "*":
                regex, i = regex + "[^/]*", i + 1
            elif pattern[i] == "?":
                regex, i = regex + "[^/]", i + 1
            else:
                regex, i = regex + re.escape(pattern[i]), i + 1
        rules.append((negated, re.compile(regex + r"\Z")))
    return rules


def _ignored(path: str, rules) -> bool:
    """Excluded when the last rule matching the path or one of its parent folders excludes it."""
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for negated, regex in rules:
        if any(regex.match(candidate) for candidate in candidates):
            excluded = not negated
    return excluded


# --- fixtures ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def image_var_dir(tmp_path_factory) -> Path:
    """SMSPORTAL_VAR_DIR after the Dockerfile's collectstatic step, run as the build runs it.

    Only the step's own variables and the Dockerfile's ENV are set, nothing from this machine.
    """
    var = tmp_path_factory.mktemp("image") / "var"
    env = {**_dockerfile_env(), "SMSPORTAL_VAR_DIR": str(var), "HOME": str(var.parent)}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}/usr/bin:/bin"
    result = subprocess.run(
        ["sh", "-c", _collectstatic_step()], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return var


# --- services, ports, health checks --------------------------------------------------
def test_docker_compose_file_describes_the_production_services():
    compose = _compose()
    services = compose["services"]
    assert {"db", "redis", "migrate", "web", "worker", "beat", "proxy"} <= set(services)
    assert "gunicorn" in " ".join(services["web"]["command"])
    assert services["web"]["environment"]["DATABASE_URL"].startswith("postgresql://")
    assert services["worker"]["environment"]["REDIS_URL"].startswith("redis://")
    assert {"pgdata", "redisdata", "media", "caddy_data"} <= set(compose["volumes"])


@pytest.mark.parametrize("name", ["db", "redis", *LONG_RUNNING])
def test_every_long_running_service_has_a_healthcheck(name):
    check = _compose()["services"][name].get("healthcheck") or {}
    assert not check.get("disable"), name
    assert check.get("test") and check["test"][0] in {"CMD", "CMD-SHELL"}, name


def test_only_the_proxy_publishes_ports():
    services = _compose()["services"]
    assert [name for name, service in services.items() if service.get("ports")] == ["proxy"]
    published = {str(port).split(":")[0] for port in services["proxy"]["ports"]}
    assert {"80", "443"} <= published


def test_web_trusts_forwarded_headers_only_because_it_is_unreachable_from_outside():
    services = _compose()["services"]
    assert "ports" not in services["web"]
    assert _service_environment(_compose(), "web")["FORWARDED_ALLOW_IPS"] == "*"
    # The other app containers get the same environment without it: nothing there reads it.
    assert "FORWARDED_ALLOW_IPS" not in services["worker"]["environment"]


def test_migrate_only_migrates():
    command = " ".join(_compose()["services"]["migrate"]["command"])
    assert "migrate" in command
    assert "collectstatic" not in command


# --- static files --------------------------------------------------------------------
def test_dockerfile_collects_static_files_at_build_time(image_var_dir):
    instructions = _dockerfile()
    step = _collectstatic_step()
    assert instructions.index(("RUN", step)) > instructions.index(("COPY", ". ."))
    assert "PRODUCTION=true" in step  # the manifest storage production serves from
    # The placeholder secret lives in that one step, not in the image's environment.
    assert "SECRET_KEY" not in _dockerfile_env()
    assert not [args for keyword, args in instructions if keyword == "ARG" and "SECRET_KEY" in args]
    manifest = json.loads((image_var_dir / "static" / "staticfiles.json").read_text())
    assert "css/app.css" in manifest["paths"]


def test_no_volume_hides_the_collected_static_files(image_var_dir):
    compose = _compose()
    [manifest] = image_var_dir.rglob("staticfiles.json")
    static_root = PurePosixPath(_dockerfile_env()["SMSPORTAL_VAR_DIR"]) / manifest.parent.relative_to(image_var_dir)
    assert str(static_root) == "/app/var/static"
    for name in _app_services(compose):
        for target in _volume_targets(compose["services"][name]):
            assert target != static_root and target not in static_root.parents, (name, target)


# --- the web health check, run against production settings -----------------------------
PROBE = r"""
import json, os, threading
from wsgiref.simple_server import WSGIRequestHandler, make_server

import django

django.setup()
from django.conf import settings
from django.contrib.staticfiles.storage import staticfiles_storage
from django.core.wsgi import get_wsgi_application
from django.test import Client, override_settings

from smsportal import healthcheck


class Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


server = make_server("127.0.0.1", 0, get_wsgi_application(), handler_class=Quiet)
threading.Thread(target=server.serve_forever, daemon=True).start()
os.environ["GUNICORN_BIND"] = f"0.0.0.0:{server.server_port}"  # where gunicorn would listen

host = healthcheck.health_host(os.environ)
client = Client(raise_request_exception=False)
with override_settings(API_DOCS_PUBLIC=True):  # a page that needs no database here, only the manifest
    plain_http_page = client.get("/api/docs/", HTTP_HOST=host).status_code
    proxied_page = client.get("/api/docs/", HTTP_HOST=host, HTTP_X_FORWARDED_PROTO="https").status_code
print(json.dumps({
    "exit": healthcheck.main(json.loads(os.environ["PROBE_ARGS"])),
    "host": host,
    "allowed_hosts": settings.ALLOWED_HOSTS,
    "ssl_redirect": settings.SECURE_SSL_REDIRECT,
    "old_host_ok": healthcheck.check_web(os.environ, host="127.0.0.1")[0],
    "plain_http_page": plain_http_page,
    "proxied_page": proxied_page,
    "api_docs_public": settings.API_DOCS_PUBLIC,
    "anonymous_api_docs": client.get("/api/docs/", HTTP_HOST=host, HTTP_X_FORWARDED_PROTO="https").status_code,
    "anonymous_api_schema": client.get("/api/schema/", HTTP_HOST=host, HTTP_X_FORWARDED_PROTO="https").status_code,
    "app_css": staticfiles_storage.url("css/app.css"),
}))
"""


def test_web_healthcheck_passes_against_production_settings_from_compose(image_var_dir, tmp_path):
    from django.conf import settings
    from django.http.request import validate_host

    compose = _compose()
    command = compose["services"]["web"]["healthcheck"]["test"]
    assert command[:4] == ["CMD", "python", "-m", "smsportal.healthcheck"]
    secret = tmp_path / "secret_key"
    secret.write_text("a-long-random-secret-key-for-this-test-only-0123456789abcdef")
    env = {
        **_service_environment(compose, "web"),
        # What differs on this machine: reachable servers, the secret, the image's var folder.
        "DATABASE_URL": settings.DATABASE_URL,
        "REDIS_URL": settings.REDIS_URL,
        "SECRET_KEY_FILE": str(secret),
        "SMSPORTAL_VAR_DIR": str(image_var_dir),
        "DJANGO_SETTINGS_MODULE": "smsportal.settings",
        "LOG_LEVEL": "CRITICAL",
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "PROBE_ARGS": json.dumps(command[4:]),
    }
    assert env["PRODUCTION"] == "true"
    result = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    probe = json.loads(result.stdout.strip().splitlines()[-1])

    assert probe["exit"] == 0, result.stdout  # the compose health check itself: 200 from /health
    assert validate_host(probe["host"], probe["allowed_hosts"])
    assert not probe["old_host_ok"]  # Host 127.0.0.1, as before, is refused in production
    # HTTPS is enforced for every other page, so /health passes only by being exempt.
    assert probe["ssl_redirect"] is True
    assert probe["plain_http_page"] == 301
    # Through the proxy pages render from the manifest the Dockerfile built (no 500).
    assert probe["proxied_page"] == 200
    # The API description is not public in production unless API_DOCS_PUBLIC says so.
    assert probe["api_docs_public"] is False
    assert probe["anonymous_api_docs"] in {401, 403} and probe["anonymous_api_schema"] in {401, 403}
    assert re.fullmatch(r"/static/css/app\.[0-9a-f]{12}\.css", probe["app_css"])


@pytest.mark.parametrize(
    ("allowed", "host"),
    [("sms.example.org,www.example.org", "sms.example.org"), (".example.org", "example.org"), ("*", "localhost")],
)
def test_health_host_is_one_that_allowed_hosts_accepts(allowed, host):
    from django.http.request import validate_host

    assert healthcheck.health_host({"ALLOWED_HOSTS": allowed}) == host
    assert validate_host(host, allowed.split(","))


def test_web_healthcheck_fails_when_nothing_answers():
    ok, detail = healthcheck.check_web({"ALLOWED_HOSTS": "sms.example.org", "GUNICORN_BIND": "0.0.0.0:9"}, timeout=1)
    assert not ok
    assert "127.0.0.1:9" in detail


# --- worker and beat ----------------------------------------------------------------
def test_worker_healthcheck_pings_this_very_worker():
    from celery.bin.control import inspect

    worker = _compose()["services"]["worker"]
    command = worker["healthcheck"]["test"]
    assert command[0] == "CMD-SHELL"
    words = shlex.split(command[1].replace("$$", "$"))  # compose turns $$ into $
    assert words[:5] == ["celery", "-A", "smsportal", "inspect", "ping"]
    # The worker keeps celery's default node name, celery@<hostname>, which is what is pinged.
    assert words[words.index("-d") + 1] == "celery@$HOSTNAME"
    assert not {"-n", "--hostname"} & set(worker["command"])
    options = {option for param in inspect.params for option in param.opts}
    assert {"-d", "--timeout"} <= options


def test_beat_service_runs_the_heartbeat_scheduler_and_checks_it():
    from celery.utils.imports import symbol_by_name

    from smsportal.beat import HeartbeatScheduler
    from smsportal.celery import app

    beat = _compose()["services"]["beat"]
    command = beat["command"]
    flag = "--scheduler" if "--scheduler" in command else "-S"
    assert symbol_by_name(command[command.index(flag) + 1]) is HeartbeatScheduler
    assert beat["healthcheck"]["test"] == ["CMD", "python", "-m", "smsportal.healthcheck", "beat"]
    assert "BEAT_HEARTBEAT_FILE" not in _service_environment(_compose(), "beat")  # both sides use the default
    # Beat publishes often enough that a healthy heartbeat never gets near the limit.
    intervals = [e["schedule"] for e in app.conf.beat_schedule.values() if isinstance(e["schedule"], int | float)]
    assert 3 * min(intervals) <= healthcheck.DEFAULT_HEARTBEAT_MAX_AGE


def test_heartbeat_follows_successful_publishes_only(tmp_path, monkeypatch):
    from celery import Celery

    from smsportal.beat import HeartbeatScheduler

    heartbeat = tmp_path / "heartbeat"
    heartbeat.touch()  # left over from before a restart
    monkeypatch.setenv("BEAT_HEARTBEAT_FILE", str(heartbeat))
    env = {"BEAT_HEARTBEAT_FILE": str(heartbeat)}
    app = Celery("heartbeat-test", broker="memory://", set_as_current=False)
    app.conf.beat_schedule = {"tick": {"task": "heartbeat_test.tick", "schedule": 5.0}}
    scheduler = HeartbeatScheduler(app=app, schedule_filename=str(tmp_path / "schedule"))
    try:
        assert not heartbeat.exists()
        assert not healthcheck.check_beat(env)[0]

        scheduler.apply_entry(scheduler.schedule["tick"], producer=scheduler.producer)
        assert healthcheck.check_beat(env)[0]

        long_ago = time.time() - 3600
        os.utime(heartbeat, (long_ago, long_ago))

        def broker_down(*args, **kwargs):
            raise ConnectionError("broker down")

        monkeypatch.setattr(scheduler, "send_task", broker_down)
        scheduler.apply_entry(scheduler.schedule["tick"], producer=scheduler.producer)  # logged, not raised
        assert heartbeat.stat().st_mtime == pytest.approx(long_ago)
        ok, detail = healthcheck.check_beat(env)
        assert not ok
        assert "limit" in detail
    finally:
        scheduler.close()


def test_healthcheck_command_line(tmp_path, monkeypatch, capsys):
    heartbeat = tmp_path / "heartbeat"
    monkeypatch.setenv("BEAT_HEARTBEAT_FILE", str(heartbeat))
    assert healthcheck.main(["beat"]) == 1
    heartbeat.touch()
    assert healthcheck.main(["beat"]) == 0
    assert healthcheck.main(["nonsense"]) == 1
    assert "unhealthy: " in capsys.readouterr().out


# --- the proxy ------------------------------------------------------------------------
def test_proxy_serves_the_site_address_and_keeps_its_certificates():
    compose = _compose()
    proxy = compose["services"]["proxy"]
    assert proxy["image"].startswith("caddy:2")
    assert "./deploy/Caddyfile:/etc/caddy/Caddyfile:ro" in proxy["volumes"]
    assert PurePosixPath("/data") in _volume_targets(proxy)  # certificates survive a restart
    assert "env_file" not in proxy  # the proxy gets no application secrets
    assert proxy["environment"]["SITE_ADDRESS"].startswith("${SITE_ADDRESS")
    example = _dotenv(ROOT / ".env.example")
    site = example["SITE_ADDRESS"]
    assert site in example["ALLOWED_HOSTS"].split(",")
    assert example["PUBLIC_BASE_URL"] == f"https://{site}"


def test_caddyfile_buffers_whole_requests_before_they_reach_gunicorn():
    from django.conf import settings
    from django.urls import reverse

    tree = _caddyfile((ROOT / "deploy" / "Caddyfile").read_text())
    [site] = [node for node in tree if node["name"] == "{$SITE_ADDRESS}"]
    proxies = [(node, parents) for node, parents in _walk([site]) if node["name"] == "reverse_proxy"]
    assert proxies
    limits = {}
    for proxy, parents in proxies:
        # To every web container on port 8000.
        dynamic = _child(proxy, "dynamic")
        if dynamic:
            assert dynamic["args"][:1] == ["a"]
            assert _child(dynamic, "name")["args"] == ["web"]
            assert _child(dynamic, "port")["args"] == ["8000"]
        else:
            assert proxy["args"] == ["web:8000"]
        # The body is read whole first: the buffer is larger than the largest body accepted, so a
        # body either fits or is refused, and nothing is streamed on to a worker.
        handle = parents[-1]
        assert handle["name"] == "handle"
        max_size = _size(_child(_child(handle, "request_body"), "max_size")["args"][0])
        assert _size(_child(proxy, "request_buffers")["args"][0]) > max_size
        assert _size(_child(proxy, "response_buffers")["args"][0]) > 0
        limits[tuple(handle["args"])] = max_size
    # Every route is covered: the catch-all handle and the CSV import, which takes larger files.
    assert set(limits) == {(), ("@import",)}
    assert limits[()] >= settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    assert limits[("@import",)] > settings.SMS_IMPORT_MAX_UPLOAD_MB * 2**20
    [matcher] = [node for node, _ in _walk([site]) if node["name"] == "@import"]
    paths = _child(matcher, "path")["args"]
    assert fnmatch.fnmatchcase(reverse("recipients:list_import", args=[7]), paths[0])
    assert fnmatch.fnmatchcase(reverse("api:list-imports", args=[7]), paths[1])
    # X-Forwarded-Proto is Caddy's own: no client-sent value is trusted or copied.
    for node, _ in _walk(tree):
        assert node["name"] != "trusted_proxies"
        assert not (node["name"] == "header_up" and "forwarded" in " ".join(node["args"]).lower())


# --- the image's contents and the compose file as Docker reads it -------------------------
@pytest.mark.parametrize(
    "path",
    [".venv", "var", "var/smsportal.sqlite3", ".env", "secrets/secret_key", ".git", "test-artifacts", "bench/work"],
)
def test_dockerignore_keeps_local_state_out_of_the_image(path):
    assert _ignored(path, _dockerignore_rules())


@pytest.mark.parametrize(
    "path",
    [
        "manage.py",
        "pyproject.toml",
        "requirements.lock",
        "gunicorn.conf.py",
        "smsportal/settings.py",
        "smsportal/healthcheck.py",
        "static/css/app.css",
        "templates/base.html",
    ],
)
def test_dockerignore_keeps_what_the_build_needs(path):
    assert (ROOT / path).exists()
    assert not _ignored(path, _dockerignore_rules())


def _compose_cli() -> list[str] | None:
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30)
        if probe.returncode == 0:
            return ["docker", "compose"]
    return ["docker-compose"] if shutil.which("docker-compose") else None


@pytest.mark.skipif(_compose_cli() is None, reason="no docker compose CLI on this machine")
def test_docker_compose_accepts_the_file(tmp_path):
    shutil.copy(ROOT / "docker-compose.yml", tmp_path)
    shutil.copy(ROOT / ".env.example", tmp_path / ".env")
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "secret_key").write_text("x")
    result = subprocess.run(
        [*_compose_cli(), "-f", "docker-compose.yml", "config", "-q"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
