"""``runtime.post_request`` builds the request httpx's own ``content=`` constructor builds."""

from __future__ import annotations

import httpx
import pytest

from providers import runtime

ENDPOINTS = ["http://127.0.0.1:8001/v1/Account/MA123/Message/", "https://api.example.com:8443/v2.1/messages"]


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("body", [b"", b'{"text":"hello"}', "Grüße 👋".encode() * 200])
@pytest.mark.parametrize("content_type", ["application/json", "application/vnd.api+json"])
def test_same_request_as_httpx_builds(endpoint, body, content_type):
    headers = runtime.auth_headers("MA123", "secret:with:colons", content_type)
    extensions = runtime.request_timeout(15.0, 5.0)

    ours = runtime.post_request(endpoint, headers, body, extensions)
    theirs = httpx.Request("POST", endpoint, headers=list(headers), content=body, extensions=extensions)

    assert ours.method == theirs.method == "POST"
    assert ours.url == theirs.url
    assert ours.headers.raw == theirs.headers.raw  # same names, values and order: Host first, Content-Length last
    assert ours.content == theirs.content == body
    assert ours.extensions == theirs.extensions
    assert ours.headers["authorization"].startswith("Basic ")
