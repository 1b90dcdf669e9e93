"""Plivo V3/V2 signatures, checked against the official plivo package as an oracle."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest
from plivo.utils.signature_v3 import validate_v3_signature

from providers.signatures import plivo_v2_valid, plivo_v3_signature, plivo_v3_valid

TOKEN = "MzY4ZjQ2ZTM3YjYwNjkyOWQ2YjRhZGE1ZTMxODc2"
CASES = [
    ("POST", "https://sms.example.com/webhooks/plivo/status/12/", {"Status": "delivered", "To": "14155552671"}),
    ("POST", "https://sms.example.com/webhooks/plivo/status/12/?x=1&a=b", {"From": "2", "To": "1"}),
    ("POST", "https://sms.example.com/webhooks/plivo/inbound/", {}),
    ("POST", "https://sms.example.com/webhooks/plivo/inbound/", {"Text": "Grüße 👋 a&b=c", "Media0": "https://m/x"}),
    ("POST", "https://sms.example.com/hook/", {"Media": ["https://m/b", "https://m/a"], "Type": "mms"}),
    ("GET", "https://sms.example.com/hook/?b=2", {"Status": "sent", "a": "1"}),
    ("GET", "https://sms.example.com/hook/", {}),
]


@pytest.mark.parametrize(("method", "url", "params"), CASES)
def test_our_v3_signature_is_what_plivo_validates(method, url, params):
    signature = plivo_v3_signature(
        method=method, url=url, nonce="12345678901234567890", auth_token=TOKEN, params=params
    )

    assert validate_v3_signature(method, url, "12345678901234567890", TOKEN, signature, dict(params))
    assert plivo_v3_valid(
        method=method, url=url, nonce="12345678901234567890", signatures=signature, auth_token=TOKEN, params=params
    )


@pytest.mark.parametrize(("method", "url", "params"), CASES)
def test_v3_refuses_what_plivo_refuses(method, url, params):
    forged = plivo_v3_signature(method=method, url=url, nonce="1", auth_token="another-token", params=params)

    assert not validate_v3_signature(method, url, "1", TOKEN, forged, dict(params))
    assert not plivo_v3_valid(method=method, url=url, nonce="1", signatures=forged, auth_token=TOKEN, params=params)


def test_v3_fails_when_a_param_url_or_nonce_changes():
    url, params = CASES[0][1], CASES[0][2]
    good = plivo_v3_signature(method="POST", url=url, nonce="n1", auth_token=TOKEN, params=params)

    assert plivo_v3_valid(method="POST", url=url, nonce="n1", signatures=good, auth_token=TOKEN, params=params)
    tampered = {**params, "Status": "failed"}
    assert not plivo_v3_valid(method="POST", url=url, nonce="n1", signatures=good, auth_token=TOKEN, params=tampered)
    assert not plivo_v3_valid(
        method="POST", url=url.replace("12", "13"), nonce="n1", signatures=good, auth_token=TOKEN, params=params
    )
    assert not plivo_v3_valid(method="POST", url=url, nonce="n2", signatures=good, auth_token=TOKEN, params=params)


def test_v3_accepts_any_of_several_comma_separated_signatures():
    url, params = CASES[0][1], CASES[0][2]
    good = plivo_v3_signature(method="POST", url=url, nonce="n", auth_token=TOKEN, params=params)
    header = f"c29tZXRoaW5nIGVsc2U=, {good}"

    assert validate_v3_signature("POST", url, "n", TOKEN, header.replace(" ", ""), dict(params))
    assert plivo_v3_valid(method="POST", url=url, nonce="n", signatures=header, auth_token=TOKEN, params=params)


@pytest.mark.parametrize(("nonce", "signature", "token"), [("", "x", TOKEN), ("n", "", TOKEN), ("n", "x", "")])
def test_empty_inputs_never_validate(nonce, signature, token):
    assert not plivo_v3_valid(method="POST", url="https://a/", nonce=nonce, signatures=signature, auth_token=token)
    assert not plivo_v2_valid(url="https://a/", nonce=nonce, signatures=signature, auth_token=token)


def test_v2_signs_the_url_without_query_plus_nonce():
    nonce = "9876"
    expected = base64.b64encode(
        hmac.new(TOKEN.encode(), b"https://sms.example.com/hook/" + nonce.encode(), hashlib.sha256).digest()
    ).decode()

    assert plivo_v2_valid(url="https://sms.example.com/hook/?a=1", nonce=nonce, signatures=expected, auth_token=TOKEN)
    assert not plivo_v2_valid(url="https://sms.example.com/other/", nonce=nonce, signatures=expected, auth_token=TOKEN)
