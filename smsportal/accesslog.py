"""gunicorn's logger with the URL parts of its access log masked (``logger_class`` in gunicorn.conf.py).

The access log is written by gunicorn, not through Django's logging, so the
masking filter never sees it: the webhook secret in a callback path and phone
numbers in query strings (``?q=%2B1415…``) are masked here, in every atom that
carries a URL, whatever ``access_log_format`` is configured.
"""

from __future__ import annotations

from typing import Any

from gunicorn.glogging import Logger  # type: ignore[import-untyped]

from smsportal.logging import mask_query, mask_url

URL_ATOMS = ("r", "U", "f", "{raw_uri}e", "{path_info}e", "{http_referer}e", "{referer}i")
QUERY_ATOMS = ("q", "{query_string}e")


class MaskedAccessLogger(Logger):
    def atoms(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> dict[str, Any]:
        atoms: dict[str, Any] = super().atoms(resp, req, environ, request_time)
        for keys, mask in ((URL_ATOMS, mask_url), (QUERY_ATOMS, mask_query)):
            for key in keys:
                value = atoms.get(key)
                if isinstance(value, str):
                    atoms[key] = mask(value)
        return atoms
