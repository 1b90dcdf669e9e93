"""The fake's own Plivo signer, the product's verifier and the official plivo package agree.

The fake keeps its own small signer (devtools/fake_provider/plivo.py) on purpose: the
product's webhook tests sign with it, so it must not be the product's code. This module
holds both to Plivo's reference implementation (``plivo.utils``).

Segment counting has no such oracle: the plivo package has no segment counter, and the fake
reuses the product's (messaging.encoding) since no test is about Plivo's ``Units``.
"""

from __future__ import annotations

import pytest
from plivo.utils import validate_signature as plivo_validate_v2
from plivo.utils.signature_v3 import validate_v3_signature as plivo_validate_v3

from devtools.fake_provider import plivo as fake
from providers import signatures as product

TOKEN = "MzY4ZjQ2ZTM3YjYwNjkyOWQ2YjRhZGE1ZTMxODc2"
NONCE = "12345678901234567890"
CASES = [
    ("POST", "https://example.com/sms", {"From": "2", "To": "1"}),
    ("POST", "https://example.com/sms?x=1&a=b%20c", {"Text": "héllo wörld €", "B": ""}),
    ("POST", "http://127.0.0.1:8000/a/b/?z=1&z=0", {}),
    ("POST", "http://127.0.0.1:8000/a", {}),
    ("POST", "https://sms.example.com/webhooks/plivo/inbound/", {"Text": "Grüße 👋 a&b=c", "Media0": "https://m/x"}),
    ("POST", "https://sms.example.com/hook/?t=a+b", {"Media": ["https://m/b", "https://m/a"], "Type": "mms"}),
    ("POST", "https://sms.example.com/webhooks/plivo/status/12/", {"Status": "delivered", "ErrorCode": "000"}),
    ("GET", "https://example.com/s?q=1", {"Status": "sent", "A": "x y"}),
    ("GET", "https://example.com/s", {}),
    ("GET", "https://sms.example.com/hook/?b=2", {"Status": "sent", "a": "1"}),
]


def _copy(params: dict) -> dict:
    # plivo's validator merges the URL's query into the dict it is given
    return {k: list(v) if isinstance(v, list) else v for k, v in params.items()}


@pytest.mark.parametrize(("method", "url", "params"), CASES)
def test_v3_fake_and_product_sign_the_same_string(method, url, params):
    assert fake.plivo_v3_string(method, url, _copy(params)) == product.plivo_v3_string(
        method=method, url=url, params=_copy(params)
    )


@pytest.mark.parametrize(("method", "url", "params"), CASES)
def test_v3_the_fakes_signature_is_what_plivo_and_the_product_accept(method, url, params):
    signature = fake.plivo_v3_signature(method, url, NONCE, TOKEN, _copy(params))

    assert plivo_validate_v3(method, url, NONCE, TOKEN, signature, _copy(params))
    assert product.plivo_v3_valid(
        method=method, url=url, nonce=NONCE, signatures=signature, auth_token=TOKEN, params=_copy(params)
    )
    assert signature == product.plivo_v3_signature(
        method=method, url=url, nonce=NONCE, auth_token=TOKEN, params=_copy(params)
    )


@pytest.mark.parametrize(("method", "url", "params"), CASES)
def test_v3_what_plivo_refuses_the_product_refuses(method, url, params):
    forged = fake.plivo_v3_signature(method, url, NONCE, "another-token", _copy(params))

    assert not plivo_validate_v3(method, url, NONCE, TOKEN, forged, _copy(params))
    assert not product.plivo_v3_valid(
        method=method, url=url, nonce=NONCE, signatures=forged, auth_token=TOKEN, params=_copy(params)
    )


@pytest.mark.parametrize("url", sorted({url for _, url, _ in CASES}))
def test_v2_the_fakes_signature_is_what_plivo_and_the_product_accept(url):
    signature = fake.plivo_v2_signature(url, NONCE, TOKEN)

    assert plivo_validate_v2(url, NONCE, signature, TOKEN)
    assert product.plivo_v2_valid(url=url, nonce=NONCE, signatures=signature, auth_token=TOKEN)
    assert signature == product.plivo_v2_signature(url=url, nonce=NONCE, auth_token=TOKEN)
    forged = fake.plivo_v2_signature(url, NONCE, "another-token")
    assert not plivo_validate_v2(url, NONCE, forged, TOKEN)
    assert not product.plivo_v2_valid(url=url, nonce=NONCE, signatures=forged, auth_token=TOKEN)


@pytest.mark.parametrize(("method", "url", "params"), CASES)
def test_the_headers_the_fake_sends_pass_both_checks(method, url, params):
    headers = fake.plivo_signature_headers(method, url, _copy(params), TOKEN)
    nonce = headers["X-Plivo-Signature-V3-Nonce"]

    assert headers["X-Plivo-Signature-V2-Nonce"] == nonce and len(nonce) == 20
    assert plivo_validate_v3(method, url, nonce, TOKEN, headers["X-Plivo-Signature-V3"], _copy(params))
    assert plivo_validate_v2(url, nonce, headers["X-Plivo-Signature-V2"], TOKEN)
    assert product.plivo_v3_valid(
        method=method,
        url=url,
        nonce=nonce,
        signatures=headers["X-Plivo-Signature-V3"],
        auth_token=TOKEN,
        params=_copy(params),
    )
    assert product.plivo_v2_valid(url=url, nonce=nonce, signatures=headers["X-Plivo-Signature-V2"], auth_token=TOKEN)
