"""Issue 16 finding 4 and issue 20 item 6: logs mask phone numbers (in tracebacks too) and webhook URL
secrets, in the application's logs and in gunicorn's access log; ids that only contain digits stay."""

from __future__ import annotations

import base64
import io
import json
import logging
import runpy
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.conf import settings
from django.utils.module_loading import import_string
from gunicorn.config import Config

from smsportal.logging import MaskPhoneNumbersFilter, mask_log_text, mask_url

ROOT = Path(__file__).resolve().parents[2]
NUMBER = "+14155552671"


def handler_for(fmt: str) -> tuple[logging.Handler, io.StringIO]:
    """The console handler as settings.LOGGING builds it (its formatter and filter), writing to a buffer."""
    spec = dict(settings.LOGGING["formatters"][fmt])
    factory = import_string(spec.pop("()")) if "()" in spec else logging.Formatter
    formatter = factory(**({"fmt": spec["format"]} if "format" in spec else {}))
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    handler.addFilter(MaskPhoneNumbersFilter())
    return handler, out


def log_a_failure(handler: logging.Handler) -> None:
    logger = logging.getLogger("tests.masking")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        raise ValueError(f"cannot send to {NUMBER} via /webhooks/flowroute/s3cret-path/status/7/")
    except ValueError:
        logger.exception("send failed", stack_info=True)
    finally:
        logger.removeHandler(handler)
        logger.propagate = True


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_tracebacks_are_masked_in_both_formats(fmt):
    handler, out = handler_for(fmt)
    log_a_failure(handler)
    text = out.getvalue()

    assert "ValueError" in text and "Traceback" in text
    assert NUMBER not in text and "+*******2671" in text
    assert "s3cret-path" not in text and "/webhooks/flowroute/****/status/7/" in text
    if fmt == "json":
        json.loads(text)


@pytest.mark.parametrize(
    "task_id",
    [
        "23451156-74f2-4b3a-8123-456789012345",
        "1156a4f2-7400-4b3a-8123-456789012345",
        "12345678-1234-4234-8234-123456789012",
        "e3b0c442-9811-4a6f-9d2b-415555267100",
    ],
)
def test_celery_task_ids_are_not_masked(task_id):
    line = f"Task providers.apply_status_events[{task_id}] succeeded in 0.03s: 3"

    assert mask_log_text(line) == line


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("to +14155552671 and +447700900123", "to +*******2671 and +********0123"),
        ("numbers +14155552671 +14155552672", "numbers +*******2671 +*******2672"),
        ("call 415-555-2671 now", "call ******2671 now"),
        ("nonce 12345678901234567890 used", "nonce 12345678901234567890 used"),
        ("campaign 42 sent 1000", "campaign 42 sent 1000"),
        # Dates and times are not numbers (they were masked to "******0204:27:42").
        ("due 2026-12-02 04:27:42 UTC", "due 2026-12-02 04:27:42 UTC"),
        ("due 2026-12-02, to 415-555-2671", "due 2026-12-02, to ******2671"),
    ],
)
def test_phone_numbers_are_still_masked(text, masked):
    assert mask_log_text(text) == masked


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("/webhooks/flowroute/s3cret/status/1234567/", "/webhooks/flowroute/****/status/1234567/"),
        ("/webhooks/plivo/s3cret/inbound/", "/webhooks/plivo/****/inbound/"),
        ("/recipients/?q=%2B14155552671&page=2", "/recipients/?q=%2B*******2671&page=2"),
        ("/recipients/?q=+1+415+555+2671", "/recipients/?q=+*******2671"),
        ("/inbox?number=4155552671", "/inbox?number=******2671"),
        ("/api/v1/messages?cursor=cD0nMSBvciAxPTEn&id=12", "/api/v1/messages?cursor=cD0nMSBvciAxPTEn&id=12"),
        # A US number typed as "(415) 555-2671": the area code in parentheses, encoded or not.
        ("/inbox?q=%28415%29%20555-2671", "/inbox?q=******2671"),
        ("/inbox?q=(415)+555-2671", "/inbox?q=******2671"),
    ],
)
def test_urls_lose_their_secret_and_numbers(url, masked):
    assert mask_url(url) == masked


def test_gunicorn_access_log_masks_the_webhook_secret_and_query_numbers(tmp_path):
    conf = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    cfg = Config()
    cfg.set("logger_class", conf["logger_class"])
    cfg.set("accesslog", str(tmp_path / "access.log"))
    cfg.set("access_log_format", '%(h)s "%(r)s" %(s)s "%(f)s" %(U)s?%(q)s {%({raw_uri}e)s}')
    logger = cfg.logger_class(cfg)
    environ = {
        "REQUEST_METHOD": "POST",
        "RAW_URI": "/webhooks/flowroute/s3cret-path/inbound/?From=%2B14155552671",
        "PATH_INFO": "/webhooks/flowroute/s3cret-path/inbound/",
        "QUERY_STRING": "From=%2B14155552671",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "192.168.100.200",
        "HTTP_REFERER": "https://sms.example.com/recipients/?q=4155552671",
    }
    response = SimpleNamespace(status="200 OK", sent=2, headers=[])
    logger.access(response, SimpleNamespace(headers=[]), environ, timedelta(milliseconds=3))
    for handler in logger.access_log.handlers:
        handler.flush()
    line = (tmp_path / "access.log").read_text()

    assert "s3cret-path" not in line and "14155552671" not in line and "4155552671" not in line, line
    assert '"POST /webhooks/flowroute/****/inbound/?From=%2B*******2671 HTTP/1.1" 200' in line
    assert "192.168.100.200" in line  # the client address is no phone number
    assert line.count("/webhooks/flowroute/****/inbound/") == 3


def test_json_extras_are_masked_too(rf):
    """django.request logs the request object itself: its repr carries the path with the secret."""
    request = rf.get("/webhooks/plivo/s3cret-path/inbound/?From=%2B14155552671")
    record = logging.LogRecord("django.request", logging.WARNING, __file__, 1, "Method Not Allowed", (), None)
    record.request, record.status_code, record.numbers = request, 405, {"to": [NUMBER]}
    handler, out = handler_for("json")
    handler.handle(record)
    line = json.loads(out.getvalue())

    assert "s3cret-path" not in line["request"] and "/webhooks/plivo/****/inbound/" in line["request"]
    assert (line["status_code"], line["numbers"]) == (405, {"to": ["+*******2671"]})


EVERY_ATOM_FORMAT = (
    '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s %(B)s "%(f)s" "%(a)s" %(m)s %(U)s %(q)s %(H)s %(T)s %(D)s %(M)s '
    "%(L)s %(p)s %(x)s %({X-Trace}i)s %({x-trace}i)s %({referer}i)s %({Content-Type}o)s %({raw_uri}e)s "
    "%({PATH_INFO}e)s %({query_string}e)s %({http_referer}e)s %({nothing}e)s %({nothing}i)s %({odd}x)s %(D)05d"
)


@pytest.mark.parametrize(
    "fmt",
    [
        Config().access_log_format,  # gunicorn's default, which gunicorn.conf.py keeps
        EVERY_ATOM_FORMAT,
        '%({X-Forwarded-For}i)s "%(r)s" %(s)s %(M)sms',
    ],
)
def test_the_access_log_writes_what_gunicorns_atoms_give(tmp_path, fmt):
    """Atoms are computed only when the format reads them, yet every line is the one gunicorn's
    ``SafeAtoms(atoms())`` (masked) would give: same values, quotes escaped, "-" for unknown atoms."""
    conf = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    cfg = Config()
    cfg.set("logger_class", conf["logger_class"])
    cfg.set("accesslog", str(tmp_path / "access.log"))
    cfg.set("access_log_format", fmt)
    logger = cfg.logger_class(cfg)
    logger.now = lambda: "[02/Dec/2026:07:00:00 +0000]"  # one clock for both lines
    environ = {
        "REQUEST_METHOD": "POST",
        "RAW_URI": '/webhooks/plivo/s3cret-path/status/12/?q=%2B14155552671&x="y"',
        "PATH_INFO": "/webhooks/plivo/s3cret-path/status/12/",
        "QUERY_STRING": 'q=%2B14155552671&x="y"',
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "10.0.0.7",
        "HTTP_REFERER": "https://sms.example.com/inbox?number=4155552671",
        "HTTP_USER_AGENT": 'curl/8 "quoted"',
        "HTTP_AUTHORIZATION": "Basic " + base64.b64encode(b"ann:pw").decode(),
        "path_info": "lower-case twin: the later key wins, as in gunicorn's dict",
    }
    headers = [
        ("X-TRACE", "first"),
        ("x-trace", 'second "one"'),
        ("REFERER", "https://sms.example.com/webhooks/flowroute/other-secret/inbound/"),
        ("X-FORWARDED-FOR", "203.0.113.9"),
    ]
    response = SimpleNamespace(status="403 Forbidden", sent=17, headers=[("Content-Type", "text/plain")])
    request, took = SimpleNamespace(headers=headers), timedelta(seconds=1, microseconds=2345)
    records: list[logging.LogRecord] = []
    keep = logging.Handler()
    keep.emit = records.append  # type: ignore[method-assign]
    logger.access_log.addHandler(keep)
    try:
        logger.access(response, request, environ, took)
    finally:
        logger.access_log.removeHandler(keep)
    for handler in logger.access_log.handlers:
        handler.flush()

    expected = fmt % logger.atoms_wrapper_class(logger.atoms(response, request, environ, took))
    assert (tmp_path / "access.log").read_text() == expected + "\n"
    assert "s3cret-path" not in expected and "14155552671" not in expected and "other-secret" not in expected
    # A handler that walks the arguments gets every atom, as gunicorn builds them.
    assert dict(records[0].args) == dict(logger.atoms_wrapper_class(logger.atoms(response, request, environ, took)))
