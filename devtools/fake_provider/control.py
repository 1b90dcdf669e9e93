"""The control API under ``/_fake/``: health, stats, messages, duplicates, config, reset, drain,
inbound. :class:`.client.FakeProviderClient` is its client."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .httputil import json_response
from .inbound import INBOUND_KEYS
from .records import MESSAGE_FIELDS

if TYPE_CHECKING:
    from .server import FakeProviderServer

PREFIX = "/_fake/"


async def handle(server: FakeProviderServer, request: web.BaseRequest, path: str) -> web.StreamResponse:
    name = path[len(PREFIX) :].rstrip("/")
    method = request.method
    try:
        if name == "health":
            return json_response({"ok": True, "url": server.url})
        if name == "stats" and method == "GET":
            return json_response(server.stats())
        if name == "messages" and method == "GET":
            return _messages(server, request)
        if name == "duplicates" and method == "GET":
            return json_response(server.duplicates())
        if name == "config":
            if method == "GET":
                return json_response(server.config.to_dict())
            if method == "POST":
                body = await _read_json(request)
                return json_response(server.configure(**body))
        if name == "reset" and method == "POST":
            body = await _read_json(request, allow_empty=True)
            server.reset(config=bool(body.get("config", False)))
            return json_response({"ok": True})
        if name == "drain" and method == "POST":
            body = await _read_json(request, allow_empty=True)
            left = await server.drain(float(body.get("timeout", 10.0)))
            return json_response({"pending": left})
        if name == "inbound" and method == "POST":
            body = await _read_json(request)
            unknown = set(body) - INBOUND_KEYS
            if unknown:
                raise ValueError(f"unknown inbound key(s): {', '.join(sorted(unknown))}")
            result = await server.send_inbound(
                body.get("provider", ""),
                body.get("from", ""),
                body.get("to", ""),
                body.get("text", ""),
                body.get("media_urls"),
                body.get("url"),
                body.get("message_intent"),
                bool(body.get("tamper_signature", False)),
                body.get("extra"),
            )
            return json_response(result)
    except (ValueError, TypeError, KeyError) as e:
        return json_response({"error": str(e)}, status=400)
    return json_response({"error": f"unknown control endpoint {method} {path}"}, 404)


def _messages(server: FakeProviderServer, request: web.BaseRequest) -> web.Response:
    """``?fields=a,b&provider=&dst=&offset=&limit=``; ``format=rows`` for lists instead of dicts."""
    q = request.query
    fields = tuple(f for f in q.get("fields", "").split(",") if f) or None
    limit = int(q["limit"]) if q.get("limit") else None
    msgs = server.list_messages(
        fields,
        provider=q.get("provider") or None,
        dst=q.get("dst") or None,
        offset=int(q.get("offset") or 0),
        limit=limit,
    )
    if q.get("format") == "rows":
        cols = list(fields or MESSAGE_FIELDS)
        rows = [[m[f] for f in cols] for m in msgs]
        return json_response({"fields": cols, "rows": rows})
    return json_response(msgs)


async def _read_json(request: web.BaseRequest, allow_empty: bool = False) -> dict[str, Any]:
    raw = await request.read()
    if not raw.strip():
        if allow_empty:
            return {}
        raise ValueError("a JSON object body is required")
    body = json.loads(raw)
    if not isinstance(body, dict):
        raise ValueError("a JSON object body is required")
    return body
