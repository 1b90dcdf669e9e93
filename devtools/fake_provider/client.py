"""HTTP client for the fake provider's control API, and a subprocess runner.

Standard library only, so benchmark drivers can use it without extra dependencies.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

# the directory that holds the ``devtools`` package
_ROOT = str(Path(__file__).resolve().parents[2])

URL_LINE_PREFIX = "FAKE_PROVIDER_URL="


class FakeProviderError(RuntimeError):
    def __init__(self, status: int, body: str):
        super().__init__(f"fake provider control API answered {status}: {body}")
        self.status = status
        self.body = body


class FakeProviderClient:
    """Control/inspection API of a running fake provider (same method names as
    :class:`devtools.fake_provider.threaded.FakeProvider`)."""

    def __init__(self, url: str, timeout: float = 60.0):
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"not an http(s) URL: {url!r}")
        self.url = url.rstrip("/")
        self.timeout = timeout

    def _request(self, method: str, path: str, body: Any = None, query=None) -> Any:
        url = f"{self.url}/_fake/{path}"
        if query:
            q = {k: v for k, v in query.items() if v is not None}
            if q:
                url += "?" + urllib.parse.urlencode(q)
        data = None
        headers = {}
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:  # noqa: S310
                return json.loads(resp.read())
        except urllib.error.HTTPError as e:
            raise FakeProviderError(e.code, e.read().decode("utf-8", "replace")) from None

    # send endpoints of the fake
    def plivo_send_url(self, auth_id: str | None = None) -> str:
        auth_id = auth_id or self.config()["plivo_auth_id"]
        return f"{self.url}/v1/Account/{auth_id}/Message/"

    @property
    def flowroute_send_url(self) -> str:
        return f"{self.url}/v2.1/messages"

    # control API
    def health(self) -> dict[str, Any]:
        return self._request("GET", "health")

    def messages(self, fields=None, provider=None, dst=None, offset=0, limit=None) -> list[dict]:
        if fields is not None and not isinstance(fields, str):
            fields = ",".join(fields)
        return self._request(
            "GET",
            "messages",
            query={
                "fields": fields,
                "provider": provider,
                "dst": dst,
                "offset": offset or None,
                "limit": limit,
            },
        )

    def message_rows(self, fields="dst,text", provider=None, offset=0, limit=None) -> list[list]:
        """Compact form: a list of rows (lists) of the given fields."""
        if not isinstance(fields, str):
            fields = ",".join(fields)
        q = {
            "fields": fields,
            "format": "rows",
            "provider": provider,
            "offset": offset or None,
            "limit": limit,
        }
        return self._request("GET", "messages", query=q)["rows"]

    def stats(self) -> dict[str, Any]:
        return self._request("GET", "stats")

    def duplicates(self) -> list[dict[str, Any]]:
        return self._request("GET", "duplicates")

    def config(self) -> dict[str, Any]:
        return self._request("GET", "config")

    def configure(self, **kw: Any) -> dict[str, Any]:
        return self._request("POST", "config", kw)

    def reset(self, config: bool = False) -> None:
        self._request("POST", "reset", {"config": config})

    def drain(self, timeout: float = 10.0) -> int:
        return self._request("POST", "drain", {"timeout": timeout})["pending"]

    def send_inbound(
        self,
        provider: str,
        from_: str,
        to: str,
        text: str = "",
        media_urls: list[Any] | None = None,
        url: str | None = None,
        message_intent: str | None = None,
        tamper_signature: bool = False,
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"provider": provider, "from": from_, "to": to, "text": text}
        if media_urls:
            body["media_urls"] = media_urls
        if url:
            body["url"] = url
        if message_intent is not None:
            body["message_intent"] = message_intent
        if tamper_signature:
            body["tamper_signature"] = True
        if extra:
            body["extra"] = extra
        return self._request("POST", "inbound", body)


class SubprocessFakeProvider(FakeProviderClient):
    """A fake provider running as a child process (``python -m devtools.fake_provider``)."""

    def __init__(self, proc: subprocess.Popen, url: str):
        super().__init__(url)
        self.proc = proc

    @property
    def client(self) -> FakeProviderClient:
        return self

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def __enter__(self) -> SubprocessFakeProvider:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def run_in_subprocess(
    config: dict[str, Any] | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    python: str | None = None,
    startup_timeout: float = 20.0,
    env: dict[str, str] | None = None,
    extra_args: list[str] | None = None,
    **kw: Any,
) -> SubprocessFakeProvider:
    """Start ``python -m devtools.fake_provider`` on a free port and wait until it answers.

    Config comes from ``config`` and/or keyword arguments (FakeConfig keys).
    """
    cfg = dict(config or {})
    cfg.update(kw)
    cmd = [
        python or sys.executable,
        "-m",
        "devtools.fake_provider",
        "--host",
        host,
        "--port",
        str(port),
        "--config-json",
        json.dumps(cfg),
        *(extra_args or []),
    ]
    child_env = dict(os.environ if env is None else env)
    child_env["PYTHONPATH"] = os.pathsep.join(p for p in (_ROOT, child_env.get("PYTHONPATH", "")) if p)
    child_env.setdefault("PYTHONUNBUFFERED", "1")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, env=child_env, text=True)
    deadline = time.monotonic() + startup_timeout
    url = None
    assert proc.stdout is not None
    while url is None:
        line = proc.stdout.readline()
        if not line:
            proc.wait(5)
            raise RuntimeError(f"fake provider exited with code {proc.returncode} on start")
        if line.startswith(URL_LINE_PREFIX):
            url = line[len(URL_LINE_PREFIX) :].strip()
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("fake provider did not start in time")
    fake = SubprocessFakeProvider(proc, url)
    while True:
        try:
            fake.health()
            return fake
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                fake.stop()
                raise RuntimeError("fake provider did not answer in time") from None
            time.sleep(0.05)
