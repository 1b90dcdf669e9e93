"""Fake Plivo + Flowroute SMS/MMS provider for tests, the local run and benchmarks.

A dev/test tool: the product never imports it. It never imports Django either; from the
project it uses only the pure-Python segment counting of :mod:`messaging.encoding`.
"""

from .client import FakeProviderClient, FakeProviderError, SubprocessFakeProvider, run_in_subprocess
from .plivo import plivo_signature_headers, plivo_v2_signature, plivo_v3_signature, sms_units
from .registry import FakeConfig
from .server import FakeProviderServer
from .threaded import FakeProvider

__all__ = [
    "FakeConfig",
    "FakeProvider",
    "FakeProviderClient",
    "FakeProviderError",
    "FakeProviderServer",
    "SubprocessFakeProvider",
    "plivo_signature_headers",
    "plivo_v2_signature",
    "plivo_v3_signature",
    "run_in_subprocess",
    "sms_units",
]
