"""Tests of the fake SMS provider (devtools/fake_provider), over real HTTP. No Django needed."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import threading
import time
from collections import Counter

import httpx
import pytest
from aiohttp import web
from plivo.utils.signature_v3 import validate_v3_signature

from devtools.fake_provider import FakeConfig, FakeProvider, run_in_subprocess
from devtools.fake_provider.plivo import sms_units
from providers.signatures import plivo_v3_valid

pytestmark = []

SRC = "+14155550100"
FR_AUTH = ("fake-access-key", "fake-secret-key")


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------


class Receiver:
    """A tiny aiohttp webhook receiver in a background thread that records requests."""

    def __init__(self):
        self.requests: list[dict] = []
        self.status = 200
        self.body = "ok"
        self._cond = threading.Condition()

    def start(self) -> Receiver:
        ready = threading.Event()

        def run():
            self.loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self.loop)
            app = web.Application()
            app.router.add_route("*", "/{tail:.*}", self._handle)
            # short keep-alive so the fake's pooled connections go stale between tests
            self.runner = web.AppRunner(app, access_log=None, keepalive_timeout=0.3)
            self.loop.run_until_complete(self.runner.setup())
            site = web.TCPSite(self.runner, "127.0.0.1", 0)
            self.loop.run_until_complete(site.start())
            self.port = self.runner.addresses[0][1]
            ready.set()
            try:
                self.loop.run_forever()
            finally:
                self.loop.close()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        ready.wait(10)
        return self

    def stop(self):
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    def url(self, path="/cb") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def _handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        rec = {
            "method": request.method,
            "url": str(request.url),
            "path": request.path,
            "query": dict(request.query),
            "headers": dict(request.headers),
            "raw": raw,
            "t": time.monotonic(),
        }
        if request.content_type == "application/x-www-form-urlencoded":
            rec["form"] = dict(await request.post())
        elif raw:
            rec["json"] = json.loads(raw)
        with self._cond:
            self.requests.append(rec)
            self._cond.notify_all()
        if request.path.startswith("/chunked"):
            resp = web.StreamResponse(status=self.status)
            resp.enable_chunked_encoding()
            await resp.prepare(request)
            for part in (self.body[:2], self.body[2:]):
                await resp.write(part.encode())
            await resp.write_eof()
            return resp
        resp = web.Response(status=self.status, text=self.body)
        if request.path.startswith("/close"):
            resp.force_close()
        return resp

    def wait_for(self, n: int, timeout: float = 5.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.requests) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            return list(self.requests)

    def clear(self):
        with self._cond:
            self.requests.clear()
        self.status = 200
        self.body = "ok"


def v2_signature(url_no_query: str, nonce: str, token: str) -> str:
    mac = hmac.new(token.encode(), (url_no_query + nonce).encode(), hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


def assert_plivo_signed(rec: dict, token: str, params: dict | None = None):
    h = rec["headers"]
    nonce = h["X-Plivo-Signature-V3-Nonce"]
    if params is None:
        params = rec.get("form") or {}
    assert validate_v3_signature(rec["method"], rec["url"], nonce, token, h["X-Plivo-Signature-V3"], dict(params))
    # and the product's verifier agrees (tests/fake_provider/test_plivo_oracle.py for more)
    assert plivo_v3_valid(
        method=rec["method"],
        url=rec["url"],
        nonce=nonce,
        signatures=h["X-Plivo-Signature-V3"],
        auth_token=token,
        params=params,
    )
    base = rec["url"].split("?")[0]
    assert h["X-Plivo-Signature-V2-Nonce"] == nonce
    assert h["X-Plivo-Signature-V2"] == v2_signature(base, nonce, token)


@pytest.fixture(scope="module")
def fake():
    fp = FakeProvider(seed=7, callback_delay_s=0.02, timeout_hold_s=2.0).start()
    yield fp
    fp.stop()


@pytest.fixture(scope="module")
def _receiver():
    r = Receiver().start()
    yield r
    r.stop()


@pytest.fixture
def receiver(_receiver):
    _receiver.clear()
    return _receiver


@pytest.fixture
def fp(fake):
    fake.reset(config=True)
    yield fake
    fake.drain(5)


@pytest.fixture
def client():
    with httpx.Client(timeout=5) as c:
        yield c


def plivo_post(client, fp, body, auth=None, auth_id=None, **kw):
    cfg = fp.config
    url = f"{fp.url}/v1/Account/{auth_id or cfg.plivo_auth_id}/Message/"
    return client.post(url, json=body, auth=auth or (cfg.plivo_auth_id, cfg.plivo_auth_token), **kw)


def sms(dst="+14155550101", text="hello", **extra):
    return {"src": SRC, "dst": dst, "text": text, **extra}


def fr_post(client, fp, body, auth=FR_AUTH, content_type="application/vnd.api+json", **kw):
    return client.post(
        f"{fp.url}/v2.1/messages",
        content=json.dumps(body),
        headers={"Content-Type": content_type},
        auth=auth,
        **kw,
    )


# --------------------------------------------------------------------------------------
# Plivo send API
# --------------------------------------------------------------------------------------


def test_plivo_sms_accepted(fp, client):
    r = plivo_post(client, fp, sms(url="http://127.0.0.1:9/cb", method="POST", log="false"))
    assert r.status_code == 202
    body = r.json()
    assert set(body) == {"api_id", "message", "message_uuid"}
    assert body["message"] == "message(s) queued"
    assert len(body["message_uuid"]) == 1
    [m] = fp.messages()
    assert m["id"] == body["message_uuid"][0]
    assert m["provider"] == "plivo"
    assert (m["src"], m["dst"], m["text"], m["type"]) == (SRC, "+14155550101", "hello", "sms")
    assert m["media_urls"] is None and m["url"] == "http://127.0.0.1:9/cb"
    assert abs(m["received_at"] - time.time()) < 5


def test_plivo_mms_and_multiple_destinations(fp, client):
    media = ["https://example.com/a.jpg", "https://example.com/b.png"]
    r = plivo_post(client, fp, sms(type="mms", media_urls=media, text="pic"))
    assert r.status_code == 202
    r = plivo_post(client, fp, sms(dst="+14155550101<14155550102"))
    assert r.status_code == 202
    assert len(r.json()["message_uuid"]) == 2
    msgs = fp.messages()
    assert msgs[0]["type"] == "mms" and msgs[0]["media_urls"] == media
    assert [m["dst"] for m in msgs[1:]] == ["+14155550101", "+14155550102"]
    # MMS without text is fine when media is present
    assert plivo_post(client, fp, sms(type="mms", media_urls=media, text="")).status_code == 202


@pytest.mark.parametrize(
    ("auth", "auth_id"),
    [
        (("MAFAKEACCOUNT0000001", "wrong"), None),
        (("MAOTHERACCOUNT000001", "fake-plivo-auth-token"), None),
        (None, "MAOTHERACCOUNT000001"),
    ],
)
def test_plivo_auth_failure(fp, client, auth, auth_id):
    r = plivo_post(client, fp, sms(), auth=auth, auth_id=auth_id)
    assert r.status_code == 401
    assert set(r.json()) == {"api_id", "error"}
    assert fp.stats()["accepted"] == 0


def test_plivo_missing_auth_header(fp, client):
    r = client.post(f"{fp.url}/v1/Account/{fp.config.plivo_auth_id}/Message/", json=sms())
    assert r.status_code == 401


@pytest.mark.parametrize(
    "body",
    [
        {"dst": "+14155550101", "text": "x"},
        {"src": SRC, "text": "x"},
        {"src": SRC, "dst": "+14155550101"},
        sms(text="x" * 1601),
        sms(type="mms"),
        sms(type="mms", media_urls=[f"https://e.com/{i}.jpg" for i in range(11)]),
        sms(media_urls=["https://e.com/a.jpg"]),
        sms(dst=SRC),
        sms(dst="+1415555"),
        sms(dst="+1234567890123456"),
        sms(dst="+1415abc0101"),
        sms(dst="+14155550101<12"),
        sms(type="fax"),
        sms(method="PUT", url="http://127.0.0.1/cb"),
    ],
)
def test_plivo_validation_errors(fp, client, body):
    r = plivo_post(client, fp, body)
    assert r.status_code == 400, r.text
    assert set(r.json()) == {"api_id", "error"}
    assert fp.messages() == []


def test_plivo_text_limit_is_inclusive(fp, client):
    assert plivo_post(client, fp, sms(text="x" * 1600)).status_code == 202
    media = [f"https://e.com/{i}.jpg" for i in range(10)]
    assert plivo_post(client, fp, sms(type="mms", media_urls=media)).status_code == 202


def test_plivo_invalid_json(fp, client):
    cfg = fp.config
    r = client.post(
        f"{fp.url}/v1/Account/{cfg.plivo_auth_id}/Message/",
        content=b"{nope",
        headers={"Content-Type": "application/json"},
        auth=(cfg.plivo_auth_id, cfg.plivo_auth_token),
    )
    assert r.status_code == 400


def test_fail_numbers(fp, client):
    fp.configure(fail_numbers={"+15551230000": {"http": 400, "error": "invalid destination"}})
    r = plivo_post(client, fp, sms(dst="+15551230000"))
    assert r.status_code == 400
    assert r.json()["error"] == "invalid destination"
    r = fr_post(client, fp, {"from": "14155550100", "to": "15551230000", "body": "x"})
    assert r.status_code == 400
    assert r.json()["errors"][0]["detail"] == "invalid destination"
    assert plivo_post(client, fp, sms()).status_code == 202
    assert fp.stats()["accepted"] == 1


# --------------------------------------------------------------------------------------
# Flowroute send API
# --------------------------------------------------------------------------------------


def test_flowroute_jsonapi_and_flat_bodies(fp, client):
    attrs = {"from": "14155550100", "to": "14155550101", "body": "hi", "dlr_callback": None}
    r = fr_post(client, fp, {"data": {"type": "message", "attributes": attrs}})
    assert r.status_code == 202
    data = r.json()["data"]
    assert data["type"] == "message"
    assert data["id"].startswith("mdr2-") and len(data["id"]) == 5 + 32
    int(data["id"][5:], 16)
    assert data["links"]["self"] == f"{fp.url}/v2.1/messages/{data['id']}"
    flat = {
        "from": "14155550100",
        "to": "14155550102",
        "body": "",
        "is_mms": True,
        "media_urls": ["https://e.com/a.gif"],
    }
    r = fr_post(client, fp, flat, content_type="application/json")
    assert r.status_code == 202
    msgs = fp.messages(provider="flowroute")
    assert [(m["dst"], m["type"]) for m in msgs] == [("14155550101", "sms"), ("14155550102", "mms")]
    assert msgs[1]["media_urls"] == ["https://e.com/a.gif"]
    # text-only MMS is allowed
    r = fr_post(client, fp, {"from": "14155550100", "to": "14155550103", "is_mms": True})
    assert r.status_code == 202


@pytest.mark.parametrize(
    "attrs",
    [
        {"from": "+14155550100", "to": "14155550101", "body": "x"},
        {"from": "14155550100", "to": "+14155550101", "body": "x"},
        {"from": "4155550100", "to": "14155550101", "body": "x"},
        {"from": "14155550100", "to": "24155550101", "body": "x"},
        {"from": "14155550100", "to": "141555501011", "body": "x"},
        {"from": "14155550100", "body": "x"},
        {"from": "14155550100", "to": "14155550101"},
        {"from": "14155550100", "to": "14155550101", "body": "x", "media_urls": "nope"},
    ],
)
def test_flowroute_validation(fp, client, attrs):
    r = fr_post(client, fp, {"data": {"type": "message", "attributes": attrs}})
    assert r.status_code == 422, r.text
    [err] = r.json()["errors"]
    assert set(err) == {"id", "status", "title", "detail"}
    assert err["status"] == 422
    assert fp.stats()["accepted"] == 0


def test_flowroute_auth_and_content_type(fp, client):
    body = {"from": "14155550100", "to": "14155550101", "body": "x"}
    r = fr_post(client, fp, body, auth=("fake-access-key", "nope"))
    assert r.status_code == 401
    assert r.json()["errors"][0]["status"] == 401
    r = fr_post(client, fp, body, content_type="text/plain")
    assert r.status_code == 415
    assert fp.stats()["accepted"] == 0


# --------------------------------------------------------------------------------------
# fault injection
# --------------------------------------------------------------------------------------


def _run_statuses(fp, client, n):
    out = []
    for i in range(n):
        r = plivo_post(client, fp, sms(dst=f"+1415555{i:04d}", text=f"m{i}"))
        out.append(r.status_code)
        if r.status_code == 429:
            assert r.headers["Retry-After"] == "3"
            assert "error" in r.json()
    return out


def test_fault_rates_roughly_honoured_and_reproducible(fp, client):
    fp.configure(rate_5xx=0.1, rate_429=0.2, retry_after=3, seed=123)
    statuses = _run_statuses(fp, client, 400)
    c = Counter("5xx" if s >= 500 else s for s in statuses)
    assert 20 <= c["5xx"] <= 65, c
    assert 50 <= c[429] <= 115, c
    assert c[202] + c[429] + c["5xx"] == 400
    st = fp.stats()
    assert st["accepted"] == c[202] == len(fp.messages())
    assert st["fault_5xx"] == c["5xx"] and st["fault_429"] == c[429]
    assert st["status_codes"]["202"] == c[202]
    # same seed, same sequence
    fp.reset()
    assert _run_statuses(fp, client, 400) == statuses


def test_timeout_fault_holds_and_is_not_recorded(fp, client):
    fp.configure(rate_timeout=1.0, timeout_hold_s=3)
    with pytest.raises(httpx.ReadTimeout):
        plivo_post(client, fp, sms(), timeout=0.3)
    with pytest.raises(httpx.ReadTimeout):
        fr_post(client, fp, {"from": "14155550100", "to": "14155550101", "body": "x"}, timeout=0.3)
    st = fp.stats()
    assert st["fault_timeout"] == 2 and st["accepted"] == 0
    assert fp.messages() == []


def test_drop_fault_closes_connection_and_is_not_recorded(fp, client):
    fp.configure(rate_drop=1.0)
    with pytest.raises(httpx.TransportError):
        plivo_post(client, fp, sms())
    with pytest.raises(httpx.TransportError):
        fr_post(client, fp, {"from": "14155550100", "to": "14155550101", "body": "x"})
    assert fp.stats()["fault_drop"] == 2
    assert fp.messages() == []
    fp.configure(rate_drop=0.0)
    assert plivo_post(client, fp, sms()).status_code == 202


def test_ambiguous_faults_record_the_message(fp, client):
    fp.configure(rate_accept_timeout=1.0, timeout_hold_s=3)
    with pytest.raises(httpx.ReadTimeout):
        plivo_post(client, fp, sms(), timeout=0.3)
    fp.configure(rate_accept_timeout=0.0, rate_accept_drop=1.0)
    with pytest.raises(httpx.TransportError):
        plivo_post(client, fp, sms())
    st = fp.stats()
    assert st["accepted"] == 2 and st["duplicates"] == 1
    assert st["fault_accept_timeout"] == 1 and st["fault_accept_drop"] == 1


def test_latency(fp, client):
    fp.configure(latency_ms=150)
    t = time.monotonic()
    assert plivo_post(client, fp, sms()).status_code == 202
    assert time.monotonic() - t >= 0.14


# --------------------------------------------------------------------------------------
# callbacks
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("fast_http", [True, False])
def test_plivo_status_callbacks_signed(fp, client, receiver, fast_http):
    fp.configure(fast_http=fast_http)
    url = receiver.url("/status/plivo?acct=7&z=a%20b")
    r = plivo_post(client, fp, sms(text="héllo", url=url))
    uuid_ = r.json()["message_uuid"][0]
    reqs = receiver.wait_for(2)
    assert [q["form"]["Status"] for q in reqs] == ["sent", "delivered"]
    token = fp.config.plivo_auth_token
    for q in reqs:
        assert q["method"] == "POST"
        assert q["query"] == {"acct": "7", "z": "a b"}
        f = q["form"]
        assert f["MessageUUID"] == uuid_ == f["ParentMessageUUID"]
        assert (f["To"], f["From"], f["Type"]) == ("14155550101", "14155550100", "sms")
        assert "ErrorCode" not in f
        expected = {
            "MessageUUID", "To", "From", "Type", "Status", "Units", "TotalRate", "TotalAmount",
            "MCC", "MNC", "ParentMessageUUID", "PartInfo", "Sequence", "MessageTime",
            "QueuedTime", "SentTime", "DeliveryReportTime", "PowerpackUUID",
        }  # fmt: skip
        assert set(f) == expected
        time.strptime(f["MessageTime"], "%Y-%m-%d %H:%M:%S.%f")
        assert_plivo_signed(q, token)
        # a wrong token does not validate
        h = q["headers"]
        assert not validate_v3_signature(
            "POST", q["url"], h["X-Plivo-Signature-V3-Nonce"], "nope", h["X-Plivo-Signature-V3"],
            f,
        )  # fmt: skip
    assert fp.drain(5) == 0
    st = fp.stats()
    assert st["callbacks_sent"] == 2 and st["callbacks_failed"] == 0
    assert fp.messages(fields="last_status")[0]["last_status"] == "delivered"


@pytest.mark.parametrize("fast_http", [True, False])
def test_plivo_get_callback_signed(fp, client, receiver, fast_http):
    fp.configure(fast_http=fast_http)
    plivo_post(client, fp, sms(url=receiver.url("/s?b=2"), method="GET"))
    reqs = receiver.wait_for(2)
    assert len(reqs) == 2
    for q in reqs:
        assert q["method"] == "GET"
        params = {k: v for k, v in q["query"].items() if k != "b"}
        assert params["Status"] in ("sent", "delivered")
        assert_plivo_signed(q, fp.config.plivo_auth_token, params=params)


def test_plivo_outcomes_and_error_codes(fp, client, receiver):
    fp.configure(
        rate_undelivered=0.5,
        rate_failed=0.5,
        error_codes={"undelivered": [80], "failed": [30]},
        accept_then_fail={"+14155550199": {"status": "failed", "error_code": 200}},
    )
    for i in range(6):
        plivo_post(client, fp, sms(dst=f"+141555502{i:02d}", url=receiver.url()))
    plivo_post(client, fp, sms(dst="+14155550199", url=receiver.url()))
    reqs = receiver.wait_for(14)
    finals = [q["form"] for q in reqs if q["form"]["Status"] != "sent"]
    assert len(finals) == 7
    for f in finals:
        assert f["Status"] in ("undelivered", "failed")
        want = {"undelivered": "80", "failed": "30"}[f["Status"]]
        if f["To"] == "14155550199":
            want = "200"
        assert f["ErrorCode"] == want
    outcomes = {m["dst"]: (m["outcome"], m["error_code"]) for m in fp.messages()}
    assert outcomes["+14155550199"] == ("failed", 200)


def test_callback_duplicates_and_out_of_order(fp, client, receiver):
    fp.configure(duplicate_callbacks=1.0, out_of_order=True)
    plivo_post(client, fp, sms(url=receiver.url()))
    reqs = receiver.wait_for(4)
    assert [q["form"]["Status"] for q in reqs] == ["delivered", "delivered", "sent", "sent"]
    for q in reqs:
        assert_plivo_signed(q, fp.config.plivo_auth_token)
    assert fp.stats()["callbacks_duplicated"] == 2


def test_early_callback_arrives_before_the_answer(fp, client, receiver):
    fp.configure(early_callback=True, callback_delay_s=1.0)
    r = plivo_post(client, fp, sms(url=receiver.url()))
    assert r.status_code == 202
    # awaited before the answer: already there when the response came back
    assert [q["form"]["Status"] for q in receiver.requests] == ["sent", "delivered"]
    assert receiver.requests[0]["form"]["MessageUUID"] == r.json()["message_uuid"][0]

    receiver.clear()
    fp.configure(early_callback_mode="first", callback_delay_s=0.05)
    r = fr_post(
        client,
        fp,
        {"from": "14155550100", "to": "14155550101", "body": "x", "dlr_callback": receiver.url()},
    )
    assert [q["json"]["data"]["attributes"]["level"] for q in receiver.requests] == [1]
    reqs = receiver.wait_for(2)
    assert reqs[1]["json"]["data"]["attributes"]["status"] == "delivered"


def test_flowroute_dlr_shape(fp, client, receiver):
    fp.configure(rate_buffered=1.0)
    body = {"from": "14155550100", "to": "14155550101", "body": "hey"}
    body["dlr_callback"] = receiver.url("/dlr?t=secret")
    mid = fr_post(client, fp, {"data": {"type": "message", "attributes": body}}).json()["data"]["id"]
    reqs = receiver.wait_for(3)
    assert len(reqs) == 3
    datas = [q["json"]["data"] for q in reqs]
    for d in datas:
        assert d["type"] == "delivery_receipt" and d["id"] == mid
        a = d["attributes"]
        assert set(a) == {
            "body", "level", "status", "status_code", "status_code_description", "timestamp",
        }  # fmt: skip
        assert a["body"] == "hey"
        time.strptime(a["timestamp"], "%Y-%m-%dT%H:%M:%SZ")
    assert [(d["attributes"]["level"], d["attributes"]["status"]) for d in datas] == [
        (1, "smsc submit"),
        (2, "message buffered"),
        (2, "delivered"),
    ]
    assert datas[1]["attributes"]["status_code"] == "1003"
    assert reqs[0]["query"] == {"t": "secret"}

    receiver.clear()
    fp.configure(rate_buffered=0.0, rate_undelivered=1.0)
    body["to"] = "14155550102"
    fr_post(client, fp, body)
    reqs = receiver.wait_for(2)
    final = reqs[-1]["json"]["data"]["attributes"]
    assert final["level"] == 2 and final["status"] == "undeliverable"
    assert final["status_code"] in {"80", "20", "70"}


@pytest.mark.parametrize("fast_http", [True, False])
@pytest.mark.parametrize("path", ["/plain", "/chunked", "/close"])
def test_webhook_clients_read_answers(fp, receiver, fast_http, path):
    fp.configure(fast_http=fast_http)
    receiver.status, receiver.body = 201, "answer body"
    for text in ("one", "two"):
        res = fp.send_inbound("plivo", "+14155550101", "+14155550100", text, url=receiver.url(path))
        assert (res["status"], res["body"]) == (201, "answer body")
        assert_plivo_signed(receiver.requests[-1], fp.config.plivo_auth_token)
    if path == "/plain":
        time.sleep(0.4)  # the receiver closes idle keep-alive connections after 0.3 s
    res = fp.send_inbound("flowroute", "+14155550101", "+14155550100", "x", url=receiver.url(path))
    assert (res["status"], res["body"]) == (201, "answer body")
    assert len(receiver.requests) == 3
    assert receiver.requests[-1]["json"]["data"]["attributes"]["body"] == "x"


def test_failed_callbacks_are_counted_and_retried(fp, client, receiver):
    receiver.status = 500
    fp.configure(callback_retries=1, callback_retry_delay_s=0.01)
    plivo_post(client, fp, sms(url=receiver.url()))
    receiver.wait_for(4)
    assert fp.drain(5) == 0
    st = fp.stats()
    assert st["callbacks_failed"] == 2 and st["callbacks_retried"] == 2
    assert st["callback_status_codes"] == {"500": 4}
    # callbacks off
    receiver.clear()
    fp.configure(callbacks=False)
    plivo_post(client, fp, sms(url=receiver.url()))
    time.sleep(0.15)
    assert receiver.requests == []


# --------------------------------------------------------------------------------------
# inbound
# --------------------------------------------------------------------------------------


def test_plivo_inbound_sms_and_mms(fp, receiver):
    receiver.status, receiver.body = 200, "<Response/>"
    res = fp.send_inbound("plivo", "+14155550101", "+14155550100", "STOP", url=receiver.url("/in"))
    assert res["status"] == 200 and res["body"] == "<Response/>"
    q = receiver.requests[-1]
    f = q["form"]
    assert (f["From"], f["To"], f["Type"], f["Text"]) == ("14155550101", "14155550100", "sms", "STOP")
    assert f["MessageIntent"] == "optout" and f["MessageUUID"] == res["id"]
    assert "Body" not in f and "MediaCount" not in f
    assert_plivo_signed(q, fp.config.plivo_auth_token)

    media = ["https://m.example/a.jpg", "https://m.example/b.png"]
    res = fp.send_inbound("plivo", "+14155550101", "+14155550100", "pics", media, receiver.url())
    f = receiver.requests[-1]["form"]
    assert (f["Type"], f["Body"], f["MediaCount"]) == ("mms", "pics", "2")
    assert (f["Media0"], f["Media1"]) == tuple(media)
    assert "Text" not in f
    assert_plivo_signed(receiver.requests[-1], fp.config.plivo_auth_token)

    res = fp.send_inbound("plivo", "+14155550101", "+14155550100", "x", url=receiver.url(), tamper_signature=True)
    q = receiver.requests[-1]
    h = q["headers"]
    assert not validate_v3_signature(
        "POST", q["url"], h["X-Plivo-Signature-V3-Nonce"], fp.config.plivo_auth_token,
        h["X-Plivo-Signature-V3"], q["form"],
    )  # fmt: skip


def test_flowroute_inbound(fp, receiver):
    receiver.status = 202
    media = ["https://m.example/photo.jpg", {"url": "https://m.example/x", "mime_type": "video/mp4", "file_size": 12}]
    res = fp.send_inbound("flowroute", "+14155550101", "+14155550100", "yo", media, receiver.url())
    assert res["status"] == 202
    body = receiver.requests[-1]["json"]
    a = body["data"]["attributes"]
    assert body["data"]["id"] == res["id"] and res["id"].startswith("mdr2-")
    assert (a["from"], a["to"], a["body"], a["direction"], a["is_mms"]) == (
        "14155550101",
        "14155550100",
        "yo",
        "inbound",
        True,
    )
    for k in ("message_encoding", "message_type", "status", "timestamp", "amount_nanodollars"):
        assert k in a
    inc = body["included"]
    assert [i["type"] for i in inc] == ["media", "media"]
    assert inc[0]["attributes"] == {
        "file_name": "photo.jpg",
        "file_size": 0,
        "mime_type": "image/jpeg",
        "url": media[0],
    }
    assert inc[1]["attributes"]["mime_type"] == "video/mp4"
    assert inc[1]["attributes"]["file_size"] == 12


def test_inbound_over_http_control_api(fp, client, receiver):
    receiver.status, receiver.body = 403, "bad signature"
    r = client.post(
        f"{fp.url}/_fake/inbound",
        json={"provider": "plivo", "from": "+14155550101", "to": "+14155550100", "text": "hi", "url": receiver.url()},
    )
    assert r.status_code == 200
    assert r.json()["status"] == 403 and r.json()["body"] == "bad signature"
    r = client.post(f"{fp.url}/_fake/inbound", json={"provider": "nope", "url": receiver.url()})
    assert r.status_code == 400
    # unreachable webhook
    r = client.post(
        f"{fp.url}/_fake/inbound",
        json={"provider": "flowroute", "from": "1", "to": "2", "text": "x", "url": "http://127.0.0.1:9/x"},
    )
    assert r.json()["status"] is None and r.json()["error"]
    assert fp.stats()["inbound_failed"] == 2


# --------------------------------------------------------------------------------------
# control API, duplicates, config
# --------------------------------------------------------------------------------------


def test_duplicates_reset_and_config_over_http(fp, client):
    for _ in range(3):
        plivo_post(client, fp, sms(text="same"))
    plivo_post(client, fp, sms(dst="+14155550102", text="same"))
    fr_post(client, fp, {"from": "14155550100", "to": "14155550102", "body": "same"})
    st = client.get(f"{fp.url}/_fake/stats").json()
    assert st["accepted"] == 5 and st["duplicates"] == 2 and st["duplicate_sends"] == 3
    dups = client.get(f"{fp.url}/_fake/duplicates").json()
    assert sorted((d["dst"], d["count"]) for d in dups) == [("+14155550101", 3), ("+14155550102", 2)]
    compact = client.get(f"{fp.url}/_fake/messages", params={"fields": "dst,text"}).json()
    assert compact[0] == {"dst": "+14155550101", "text": "same"}
    rows = client.get(f"{fp.url}/_fake/messages", params={"fields": "dst", "format": "rows", "limit": 2}).json()
    assert rows == {"fields": ["dst"], "rows": [["+14155550101"], ["+14155550101"]]}
    assert client.get(f"{fp.url}/_fake/messages", params={"fields": "nope"}).status_code == 400

    r = client.post(f"{fp.url}/_fake/config", json={"latency_ms": 5, "rate_429": 0.5})
    assert r.status_code == 200 and r.json()["latency_ms"] == 5.0
    assert client.get(f"{fp.url}/_fake/config").json()["rate_429"] == 0.5
    assert client.post(f"{fp.url}/_fake/config", json={"bogus": 1}).status_code == 400
    assert client.post(f"{fp.url}/_fake/config", json={"rate_5xx": 0.9}).status_code == 400
    assert fp.config.rate_5xx == 0.0  # rejected update changed nothing

    assert client.post(f"{fp.url}/_fake/reset").json() == {"ok": True}
    st = fp.stats()
    assert st["accepted"] == 0 and st["duplicates"] == 0 and fp.messages() == []
    assert fp.config.rate_429 == 0.5  # reset keeps config unless asked
    client.post(f"{fp.url}/_fake/reset", json={"config": True})
    assert fp.config.rate_429 == 0.0


def test_config_validation():
    with pytest.raises(ValueError):
        FakeConfig().update(nope=1)
    with pytest.raises(ValueError):
        FakeConfig().update(rate_failed=0.7, rate_undelivered=0.7)
    with pytest.raises(ValueError):
        FakeConfig().update(fail_numbers={"+1": {"error": "no http"}})
    c = FakeConfig()
    c.update(out_of_order=True, error_codes={"failed": [10]}, seed="3")
    assert c.out_of_order == 1.0 and c.error_codes["failed"] == [10] and c.seed == 3
    assert c.error_codes["undelivered"] == [80, 20, 70]


def test_sms_units():
    assert sms_units("a" * 160) == 1
    assert sms_units("a" * 161) == 2
    assert sms_units("€" * 80) == 1  # extension chars count double
    assert sms_units("€" * 81) == 2
    assert sms_units("é" * 160) == 1  # é is GSM-7
    assert sms_units("ā" * 70) == 1
    assert sms_units("ā" * 71) == 2
    assert sms_units("") == 1  # Plivo bills an empty MMS text as one unit
    # messaging.encoding's rule: an escape pair is never split across parts
    assert sms_units("a" * 152 + "€" + "a" * 152) == 3


def test_run_in_subprocess():
    sp = run_in_subprocess(latency_ms=1, seed=5, plivo_auth_token="tok2")
    try:
        assert sp.config()["plivo_auth_token"] == "tok2"
        cfg = sp.config()
        r = httpx.post(
            sp.plivo_send_url(),
            json=sms(),
            auth=(cfg["plivo_auth_id"], "tok2"),
        )
        assert r.status_code == 202
        assert sp.stats()["accepted"] == 1
        assert sp.messages(fields=["dst"]) == [{"dst": "+14155550101"}]
        assert sp.message_rows("dst,text") == [["+14155550101", "hello"]]
        sp.configure(rate_429=1.0)
        assert httpx.post(sp.plivo_send_url(), json=sms(), auth=(cfg["plivo_auth_id"], "tok2")).status_code == 429
        sp.reset()
        assert sp.stats()["accepted"] == 0
    finally:
        sp.stop()
    assert sp.proc.returncode is not None
