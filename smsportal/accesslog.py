"""gunicorn's logger with the URL parts of its access log masked (``logger_class`` in gunicorn.conf.py).

The access log is written by gunicorn, not through Django's logging, so the
masking filter never sees it: the webhook secret in a callback path and phone
numbers in query strings (``?q=%2B1415…``) are masked here, in every atom that
carries a URL, whatever ``access_log_format`` is configured.

Each line computes only the atoms its format reads (:class:`LazyAtoms`): gunicorn's
``atoms()`` builds one for every request header and environ variable and masks
them all, which cost more than a webhook's signature check.
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from gunicorn.glogging import Logger, SafeAtoms  # type: ignore[import-untyped]

from smsportal.logging import mask_query, mask_url

URL_ATOMS = ("r", "U", "f", "{raw_uri}e", "{path_info}e", "{http_referer}e", "{referer}i")
QUERY_ATOMS = ("q", "{query_string}e")
_MASKS = {**dict.fromkeys(URL_ATOMS, mask_url), **dict.fromkeys(QUERY_ATOMS, mask_query)}


class MaskedAccessLogger(Logger):
    def atoms(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> dict[str, Any]:
        atoms: dict[str, Any] = super().atoms(resp, req, environ, request_time)
        for key, mask in _MASKS.items():
            value = atoms.get(key)
            if isinstance(value, str):
                atoms[key] = mask(value)
        return atoms

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> None:
        # gunicorn's own access(), with atoms computed when the format asks for them.
        if not self.access_log_enabled:
            return
        try:
            self.access_log.info(self.cfg.access_log_format, LazyAtoms(self, resp, req, environ, request_time))
        except Exception:
            self.error(traceback.format_exc())


class LazyAtoms(Mapping[str, Any]):
    """``SafeAtoms(logger.atoms(...))`` as the format sees it, one atom at a time.

    ``%(key)s`` looks up only its own keys; whatever else reads the mapping (a handler that walks
    ``record.args``) gets every atom, built as gunicorn builds them.
    """

    __slots__ = ("_all", "environ", "logger", "req", "request_time", "resp")

    def __init__(self, logger: MaskedAccessLogger, resp: Any, req: Any, environ: dict[str, Any], request_time: Any):
        self.logger, self.resp, self.req, self.environ, self.request_time = logger, resp, req, environ, request_time
        self._all: SafeAtoms | None = None

    def __getitem__(self, key: str) -> Any:
        if self._all is not None:
            return self._all[key]
        if key.startswith("{"):
            key = key.lower()  # SafeAtoms: "{...}" atoms are looked up case-insensitively
            found, value = self._braced(key)
        else:
            found, value = self._plain(key)
        if not found:
            return "-"
        mask = _MASKS.get(key)
        if mask is not None and isinstance(value, str):
            value = mask(value)
        return value.replace('"', '\\"') if isinstance(value, str) else value

    def _plain(self, key: str) -> tuple[bool, Any]:
        atom = _PLAIN.get(key)
        return (False, None) if atom is None else (True, atom(self))

    def _braced(self, key: str) -> tuple[bool, Any]:
        """A ``{name}i``, ``{name}o`` or ``{name}e`` atom: the last of that name (lower-cased) wins, as in a dict."""
        name, kind = key[1:-2], key[-2:]
        if not key.endswith(("}i", "}o", "}e")):
            return False, None
        if kind == "}i":
            pairs: Any = getattr(self.req, "headers", self.req)
        elif kind == "}o":
            pairs = self.resp.headers
        else:
            pairs = self.environ
        if hasattr(pairs, "items"):
            pairs = pairs.items()
        found, value = False, None
        for k, v in pairs:
            if k.lower() == name:
                found, value = True, v
        return found, value

    def _every(self) -> SafeAtoms:
        if self._all is None:
            logger = self.logger
            self._all = logger.atoms_wrapper_class(logger.atoms(self.resp, self.req, self.environ, self.request_time))
        return self._all

    def __iter__(self) -> Iterator[str]:
        return iter(self._every())

    def __len__(self) -> int:
        return len(self._every())

    def __contains__(self, key: object) -> bool:
        return key in self._every()

    def __bool__(self) -> bool:  # logging keeps a mapping argument only if it is truthy: no need to build it
        return True


def _status(a: LazyAtoms) -> Any:
    status = a.resp.status
    return status.split(None, 1)[0] if isinstance(status, str) else status


def _sent(a: LazyAtoms) -> str:
    return (getattr(a.resp, "sent", None) is not None and str(a.resp.sent)) or "-"


def _request_line(a: LazyAtoms) -> str:
    environ = a.environ
    return f"{environ['REQUEST_METHOD']} {environ['RAW_URI']} {environ['SERVER_PROTOCOL']}"


# gunicorn's atoms (Logger.atoms), one function each.
_PLAIN: dict[str, Callable[[LazyAtoms], Any]] = {
    "h": lambda a: a.environ.get("REMOTE_ADDR", "-"),
    "l": lambda a: "-",
    "u": lambda a: a.logger._get_user(a.environ) or "-",
    "t": lambda a: a.logger.now(),
    "r": _request_line,
    "s": _status,
    "m": lambda a: a.environ.get("REQUEST_METHOD"),
    "U": lambda a: a.environ.get("PATH_INFO"),
    "q": lambda a: a.environ.get("QUERY_STRING"),
    "H": lambda a: a.environ.get("SERVER_PROTOCOL"),
    "b": _sent,
    "B": lambda a: getattr(a.resp, "sent", None),
    "f": lambda a: a.environ.get("HTTP_REFERER", "-"),
    "a": lambda a: a.environ.get("HTTP_USER_AGENT", "-"),
    "T": lambda a: a.request_time.seconds,
    "D": lambda a: (a.request_time.seconds * 1000000) + a.request_time.microseconds,
    "M": lambda a: (a.request_time.seconds * 1000) + int(a.request_time.microseconds / 1000),
    "L": lambda a: f"{a.request_time.seconds:d}.{a.request_time.microseconds:06d}",
    "p": lambda a: f"<{os.getpid()}>",
}
