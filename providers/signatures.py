"""Plivo webhook signatures, V3 and V2, checked in constant time.

V3 signs the URL plus the form parameters; V2 only the URL without its query.
Both use the public URL Plivo called (see :mod:`providers.webhooks.plivo`).
The tests check V3 against the official ``plivo`` package.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from urllib.parse import parse_qs, urlsplit

Params = Mapping[str, str | Sequence[str]]


def _b64_hmac(key: str, message: str) -> str:
    return base64.b64encode(hmac.digest(key.encode(), message.encode(), hashlib.sha256)).decode()


def _values(value: str | Sequence[str]) -> list[str]:
    return [value] if isinstance(value, str) else sorted(value)


def _query_string(params: Params) -> str:
    return "&".join("&".join(f"{k}={v}" for v in _values(params[k])) for k in sorted(params))


def _params_string(params: Params) -> str:
    # Each key followed by its value (each of its values, sorted), keys sorted; a loop, not nested
    # generators: on every callback's path, with a dozen fields.
    parts: list[str] = []
    for k in sorted(params):
        value = params[k]
        if isinstance(value, str):
            parts += (k, value)
        else:
            for v in sorted(value):
                parts += (k, v)
    return "".join(parts)


def _base(url: str) -> tuple[str, dict[str, list[str]]]:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}", parse_qs(parts.query, keep_blank_values=True)


def plivo_v3_string(*, method: str, url: str, params: Params | None = None) -> str:
    """What V3 signs, before ``"." + nonce``."""
    params = params or {}
    base, query = _base(url)
    if method.upper() == "GET":
        qs = _query_string({**params, **query})
        return f"{base}?{qs}" if qs else base
    if not params:
        qs = _query_string(query)
        return f"{base}?{qs}" if qs else base
    qs = _query_string(query)
    return f"{base}?{qs}{'.' if qs else ''}{_params_string(params)}"


def plivo_v3_signature(*, method: str, url: str, nonce: str, auth_token: str, params: Params | None = None) -> str:
    return _b64_hmac(auth_token, f"{plivo_v3_string(method=method, url=url, params=params)}.{nonce}")


def plivo_v2_signature(*, url: str, nonce: str, auth_token: str) -> str:
    return _b64_hmac(auth_token, _base(url)[0] + nonce)


def _any_matches(expected: str, header: str) -> bool:
    # The header may carry several signatures (one per token in rotation).
    found = False
    for candidate in header.split(","):
        found |= hmac.compare_digest(expected.encode(), candidate.strip().encode())
    return found


def plivo_v3_valid(
    *, method: str, url: str, nonce: str, signatures: str, auth_token: str, params: Params | None = None
) -> bool:
    if not (nonce and signatures and auth_token):
        return False
    expected = plivo_v3_signature(method=method, url=url, nonce=nonce, auth_token=auth_token, params=params)
    return _any_matches(expected, signatures)


def plivo_v2_valid(*, url: str, nonce: str, signatures: str, auth_token: str) -> bool:
    if not (nonce and signatures and auth_token):
        return False
    return _any_matches(plivo_v2_signature(url=url, nonce=nonce, auth_token=auth_token), signatures)
