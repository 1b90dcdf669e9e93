"""The validating base view every provider webhook is built on (anymail-style).

CSRF-exempt, POST only. Every ``validate_request`` defined anywhere in the
class hierarchy runs before the body is parsed, so a mixin adds a check without
calling ``super()``. A failed check answers 403, an unparseable body 400; in
both cases nothing is stored. A provider that gets a 4xx does not retry with
the same body, so a 500 is never the answer to bad input.

A provider's webhook module subclasses :class:`StatusView` and
:class:`InboundView` (they store what the provider's parser returns), maps its
status words with :func:`map_status`, its numbers with :func:`e164`, and lists
its ``urlpatterns`` (served under ``/webhooks/<provider>/``).
"""

from __future__ import annotations

import dataclasses
import hmac
import json
import logging
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from providers.events import Alongside, record_inbound, record_status_events, send_alongside
from providers.models import ProviderEvent
from providers.refs import group_members
from providers.signals import group_member_wanted
from providers.status import DeliveryStatus, InboundSMS, StatusEvent, is_message_ref

logger = logging.getLogger(__name__)


class WebhookError(Exception):
    status = 400


class MalformedWebhook(WebhookError):
    """The body is not what the provider sends."""


class WebhookAuthError(WebhookError):
    """The request did not prove it came from the provider."""

    status = 403


class WebhookView(View):
    http_method_names = ["post"]
    provider = ""

    @classmethod
    def as_view(cls, **initkwargs: Any) -> Callable[..., HttpResponseBase]:
        # CSRF-exempt as a view function, not with method_decorator on dispatch: that builds two wrappers per request.
        return csrf_exempt(super().as_view(**initkwargs))

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return self._answer(request, **kwargs)
        finally:
            if self._alongside:  # refused before its report was stored: sent on their own
                self.defer(send_alongside(self._alongside))
            for finish in self._deferred:
                finish()

    def defer(self, finish: Callable[[], object]) -> None:
        """Run ``finish`` when the request's own work is done (a check's reply read after the INSERT)."""
        self._deferred.append(finish)

    def write_alongside(self, write: Alongside) -> None:
        """Send ``write`` now and read its answer when the request's own work is done.

        :class:`StatusView` sends it with the report's INSERT instead (one write per shared flush).
        """
        self.defer(send_alongside([write]))

    _deferred: list[Callable[[], object]]  # per request, from setup()
    _alongside: list[Alongside]  # writes waiting for the report's INSERT (StatusView)

    def setup(self, request: HttpRequest, *args: Any, **kwargs: Any) -> None:
        super().setup(request, *args, **kwargs)
        self._deferred = []
        self._alongside = []

    def _answer(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
        try:
            if len(str(kwargs.get("ref", ""))) > 64:  # ProviderEvent.message_ref; ours are message ids
                raise MalformedWebhook("message reference too long")
            for cls in reversed(type(self).__mro__):
                check = cls.__dict__.get("validate_request")
                if check is not None:
                    check(self, request, **kwargs)
            self.handle(request, **kwargs)
        except WebhookError as exc:
            # Not the path: Flowroute's carries the webhook secret.
            logger.warning("%s %s refused (%s): %s", self.provider, type(self).__name__, exc.status, exc)
            response = HttpResponse(str(exc), status=exc.status, content_type="text/plain")
            response._has_been_logged = True  # type: ignore[attr-defined]  # django.request would log the path
            return response
        return HttpResponse("ok", content_type="text/plain")

    def validate_request(self, request: HttpRequest, **kwargs: Any) -> None:
        """Raise :class:`WebhookAuthError` unless the request is genuine."""

    def handle(self, request: HttpRequest, **kwargs: Any) -> None:
        raise NotImplementedError


class StatusView(WebhookView):
    """One delivery report for our message ``ref`` (from the URL), stored for the drain to apply.

    Our references are message ids: anything else names no message of ours and is refused unstored.
    """

    def handle(self, request: HttpRequest, **kwargs: Any) -> None:
        ref = str(kwargs["ref"])
        members = None if is_message_ref(ref) else group_members(ref)
        if not is_message_ref(ref) and members is None:
            raise MalformedWebhook("the message reference is not one of ours")
        event = self.parse_status(request, ref=ref)
        if members is not None:
            # One request named several messages: the report's destination picks its own.
            event = dataclasses.replace(event, message_ref=self.group_member(members, self.report_destination(request)))
        alongside, self._alongside = self._alongside, []
        record_status_events(events=[event], alongside=alongside)
        self.after_stored(event)

    def write_alongside(self, write: Alongside) -> None:
        """With the report's INSERT: the group commit sends the writes of every callback in a flush at once."""
        self._alongside.append(write)

    def group_member(self, members: list[str], destination: str) -> str:
        """The ref among ``members`` (a group's message ids) whose destination is ``destination``."""
        for _, found in group_member_wanted.send(
            sender=type(self), provider=self.provider, members=members, destination=destination
        ):
            if isinstance(found, str) and found in members:
                return found
        raise MalformedWebhook("the report's destination is in no message of that group")

    def report_destination(self, request: HttpRequest) -> str:
        """The report's destination (E.164): providers whose requests can name several say it."""
        raise MalformedWebhook("this provider's reports name one message each")

    def after_stored(self, event: StatusEvent) -> None:
        """What follows a stored report (Flowroute: a price lookup; outside a transaction the report is committed)."""

    def parse_status(self, request: HttpRequest, *, ref: str) -> StatusEvent:
        """The report as a :class:`StatusEvent`, or :class:`MalformedWebhook`."""
        raise NotImplementedError


class InboundView(WebhookView):
    """One inbound message, stored and handed to the apps at once; a provider's retry is stored once."""

    def handle(self, request: HttpRequest, **kwargs: Any) -> None:
        inbound = self.parse_inbound(request)
        if not inbound_seen(provider=self.provider, provider_message_id=inbound.provider_message_id):
            record_inbound(inbound=inbound)

    def parse_inbound(self, request: HttpRequest) -> InboundSMS:
        """The message as an :class:`InboundSMS`, or :class:`MalformedWebhook`."""
        raise NotImplementedError


_UNDELIVERED_WORDS = re.compile(r"undeliver|expire|not delivered", re.IGNORECASE)
_FAILED_WORDS = re.compile(r"fail|reject|error|invalid|block", re.IGNORECASE)


def map_status(raw: str, known: Mapping[str, DeliveryStatus]) -> DeliveryStatus:
    """A provider's status word as a normalized status.

    ``known`` maps the provider's documented words (lower case, single spaces).
    An unknown word counts as ``sent`` (never final) unless it clearly says the
    message failed; the raw report is kept either way.
    """
    word = " ".join(raw.lower().split())
    if word in known:
        return known[word]
    if _UNDELIVERED_WORDS.search(word):
        return DeliveryStatus.UNDELIVERED
    if _FAILED_WORDS.search(word):
        return DeliveryStatus.FAILED
    return DeliveryStatus.SENT


def e164(value: Any, *, nanp: bool = False) -> str:
    """A provider's number as E.164: digits get a ``+``; with ``nanp``, 10 digits get the country code 1.

    Anything that is not plain digits (a short code with letters, already ``+``) is kept as it is.
    """
    digits = str(value or "").strip()
    if nanp and len(digits) == 10 and digits.isdigit():  # a NANP number without its country code
        digits = "1" + digits
    return digits if digits.startswith("+") or not digits.isdigit() else "+" + digits


class SecretInPathMixin:
    """For providers that sign nothing: an unguessable secret in the URL path.

    ``secrets()`` returns the accepted values (several while rotating); each
    is compared in constant time.
    """

    def secrets(self) -> list[str]:
        raise NotImplementedError

    def validate_request(self, request: HttpRequest, **kwargs: Any) -> None:
        given = str(kwargs.get("secret", "")).encode()
        ok = False
        for secret in self.secrets():
            ok |= hmac.compare_digest(given, secret.encode())
        if not ok:
            raise WebhookAuthError("bad webhook secret")


def inbound_seen(*, provider: str, provider_message_id: str) -> bool:
    """Providers retry webhooks they think failed: a second copy must not act twice (two STOP replies)."""
    return bool(provider_message_id) and (
        ProviderEvent.objects.filter(
            provider=provider, kind=ProviderEvent.Kind.INBOUND, provider_message_id=provider_message_id[:100]
        ).exists()
    )


def json_body(request: HttpRequest) -> dict[str, Any]:
    """The request body as a JSON object, or :class:`MalformedWebhook`."""
    try:
        body = json.loads(request.body)
    except (ValueError, UnicodeDecodeError):
        raise MalformedWebhook("body is not JSON") from None
    except RecursionError:  # [[[[…]]]] deeper than Python's parser goes
        raise MalformedWebhook("body is nested too deeply") from None
    if not isinstance(body, dict):
        raise MalformedWebhook("body is not a JSON object")
    refuse_nul(body)
    return body


def refuse_nul(value: Any) -> None:
    """:class:`MalformedWebhook` if any string (key or value) holds a NUL, which PostgreSQL cannot store.

    The webhook app runs without the portal's NUL middleware, so its parsers check here.
    """
    stack = [value]
    while stack:  # not recursive: the parser accepts nesting deeper than a Python walk would
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                raise MalformedWebhook("body contains a NUL character")
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def form_params(request: HttpRequest) -> dict[str, str | list[str]]:
    """Form fields as Plivo signs them: one value as a string, several as a list.

    Built once per request (the signature check and the handler both need it);
    callers must not mutate the result.
    """
    cached: dict[str, str | list[str]] | None = getattr(request, "_webhook_form_params", None)
    if cached is not None:
        return cached
    try:
        fields = _urlencoded_fields(request) if request.content_type == _URLENCODED else list(request.POST.lists())
    except Exception:  # a broken multipart body, too big, too many fields: Django raises several types
        raise MalformedWebhook("body is not a form") from None
    refuse_nul("".join(key + "".join(values) for key, values in fields))  # a form is flat: one string to search
    params = {k: (v[0] if len(v) == 1 else v) for k, v in fields}
    request._webhook_form_params = params  # type: ignore[attr-defined]  # read back with getattr() above
    return params


_URLENCODED = "application/x-www-form-urlencoded"


def _urlencoded_fields(request: HttpRequest) -> list[tuple[str, list[str]]]:
    """What ``request.POST.lists()`` gives for a urlencoded body, without building a ``QueryDict``.

    The same steps as Django's (UTF-8 only, the body within ``DATA_UPLOAD_MAX_MEMORY_SIZE``, decoded
    as ``DEFAULT_CHARSET`` or else Latin-1, ``parse_qsl`` with blanks kept and at most
    ``DATA_UPLOAD_MAX_NUMBER_FIELDS``); the QueryDict's per-value calls cost more than the parse.
    """
    if request.encoding is not None and request.encoding.lower() != "utf-8":
        raise MalformedWebhook("a urlencoded body must be UTF-8")  # Django's BadRequest
    encoding = settings.DEFAULT_CHARSET
    body = request.body  # RequestDataTooBig past the limit
    try:
        text = body.decode(encoding)
    except UnicodeDecodeError:
        text = body.decode("iso-8859-1")
    fields: dict[str, list[str]] = {}
    limit = settings.DATA_UPLOAD_MAX_NUMBER_FIELDS
    for key, value in parse_qsl(text, keep_blank_values=True, encoding=encoding, max_num_fields=limit):
        fields.setdefault(key, []).append(value)
    return list(fields.items())
