"""The process's connections follow ``SMS_MAX_IN_FLIGHT``: every request a slot lets go gets a connection."""

from __future__ import annotations

from providers.backends import plivo
from tests.providers.conftest import sms


def test_a_larger_limit_gives_each_request_its_own_connection(fake, settings):
    # A first send under a limit of one makes the process's pool with one connection.
    settings.SMS_MAX_IN_FLIGHT = 1
    (first,) = plivo.SMSBackend().send_messages([sms(ref="1")])
    assert first.accepted, first.error

    # Under a limit of four, four requests that hang all reach the provider at once and end in a
    # read timeout. A pool kept at one connection would have held three waiting behind the first,
    # to fail with a connect timeout, never sent.
    settings.SMS_MAX_IN_FLIGHT = 4
    settings.SMS_HTTP_TIMEOUT = 2.0
    fake.configure(rate_timeout=1.0, timeout_hold_s=30, callbacks=False)
    outcomes = plivo.SMSBackend().send_messages([sms(ref=str(i), to=f"+1415555267{i}") for i in range(2, 6)])

    assert [o.error.code if o.error else "accepted" for o in outcomes] == ["read_timeout"] * 4
    assert fake.stats()["fault_timeout"] == 4
