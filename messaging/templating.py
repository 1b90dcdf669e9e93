"""A small, safe template language for SMS bodies (pure Python, no Django).

Syntax::

    Hi {{ first_name }}!
    Hi {{ first_name|default:"there" }}, your code is {{code}}.
    {{ city | upper | default:'your city' }}

* A tag is ``{{ name }}``; whitespace inside the braces is optional.
* ``name`` is a letter or underscore followed by letters, digits and
  underscores, and is looked up in a flat mapping (no attribute access, no
  method calls, no expressions).
* Filters follow ``|`` and are applied left to right: ``default:"text"``
  (single or double quotes; used when the value is missing, ``None`` or blank),
  ``upper``, ``lower``, ``title`` and ``capfirst``.
* Values are converted with ``str()``; a missing value without a default renders
  as the empty string. Nothing is HTML-escaped: this is SMS.
* Text outside tags is copied verbatim (a lone ``}}`` is just text).

Templates are compiled once and cached, so :func:`render` is cheap enough to
call per recipient in a sending loop.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from functools import lru_cache
from types import MappingProxyType
from typing import NamedTuple, final

__all__ = [
    "FILTERS",
    "STANDARD_VARIABLES",
    "TemplateError",
    "render",
    "validate",
    "variables_in",
]

#: Variables the sender always provides besides the recipient's attributes.
STANDARD_VARIABLES: frozenset[str] = frozenset({"first_name", "last_name", "name", "phone"})


class TemplateError(ValueError):
    """A template is malformed or uses a variable that is not available.

    ``position`` is the 0-based offset in the template of the offending tag (or
    ``None``), ``variables`` the names of the offending variables, if any.
    """

    def __init__(
        self,
        message: str,
        *,
        position: int | None = None,
        variables: tuple[str, ...] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.position = position
        self.variables = variables

    def __str__(self) -> str:
        return self.message


def _capfirst(value: str) -> str:
    return value[:1].upper() + value[1:]


#: Filters that take no argument. ``default`` (which takes one) is handled apart.
FILTERS: Mapping[str, Callable[[str], str]] = MappingProxyType(
    {
        "capfirst": _capfirst,
        "lower": str.lower,
        "title": str.title,
        "upper": str.upper,
    }
)
_ALL_FILTER_NAMES = ", ".join(sorted([*FILTERS, "default"]))


def _make_default(fallback: str) -> Callable[[str], str]:
    def default(value: str) -> str:
        return value if value and not value.isspace() else fallback

    return default


@final  # so that ``type(part) is not _Var`` narrows ``part`` to a string for mypy
class _Var(NamedTuple):
    name: str
    filters: tuple[Callable[[str], str], ...]
    has_default: bool
    position: int


class _Compiled(NamedTuple):
    # Literal strings and variables, in order.
    parts: tuple[str | _Var, ...]
    variables: tuple[_Var, ...]


_OPEN = "{{"
_CLOSE = "}}"
_WS = re.compile(r"\s*")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_WORD = re.compile(r"[^\s|:{}\"']+")


def _where(template: str, position: int) -> str:
    line = template.count("\n", 0, position) + 1
    column = position - (template.rfind("\n", 0, position) + 1) + 1
    return f"line {line}, column {column}"


def _parse_tag(template: str, start: int) -> tuple[_Var, int]:
    """Parse the tag opened by ``{{`` at ``start``; return it and the offset after ``}}``."""
    n = len(template)

    def fail(message: str, at: int = start) -> TemplateError:
        return TemplateError(f"{message} (at {_where(template, at)}).", position=at)

    def unclosed() -> TemplateError:
        return fail(f'Unclosed "{_OPEN}": every "{_OPEN}" needs a matching "{_CLOSE}"')

    def skip_ws(pos: int) -> int:
        return _WS.match(template, pos).end()  # type: ignore[union-attr]  # \s* always matches

    if template.find(_CLOSE, start + len(_OPEN)) == -1:
        raise unclosed()
    pos = skip_ws(start + len(_OPEN))

    match = _NAME.match(template, pos)
    word = _WORD.match(template, pos)
    if word is not None and (match is None or match.end() != word.end()):
        raise fail(
            f'Invalid variable name "{word.group()}": use letters, digits and underscores, not starting with a digit',
            pos,
        )
    if match is None:
        if template.startswith(_CLOSE, pos) or template[pos] == "|":
            raise fail(f'Empty variable name in "{_OPEN} {_CLOSE}"')
        if template.startswith(_OPEN, pos):
            raise unclosed()
        raise fail(f"Unexpected character {template[pos]!r} in a variable tag", pos)
    name = match.group()
    pos = skip_ws(match.end())

    filters: list[Callable[[str], str]] = []
    has_default = False
    while pos < n and template[pos] == "|":
        pos = skip_ws(pos + 1)
        fmatch = _NAME.match(template, pos)
        if fmatch is None:
            raise fail(f'Missing filter name after "|" for variable "{name}"', pos)
        fname = fmatch.group()
        pos = skip_ws(fmatch.end())
        if fname == "default":
            if pos >= n or template[pos] != ":":
                raise fail(
                    f'Filter "default" on variable "{name}" needs an argument, '
                    f'e.g. {_OPEN} {name}|default:"there" {_CLOSE}',
                    fmatch.start(),
                )
            pos = skip_ws(pos + 1)
            quote = template[pos] if pos < n else ""
            if quote not in ("'", '"'):
                raise fail(
                    f'The argument of filter "default" on variable "{name}" must be in single or double quotes',
                    pos,
                )
            end = template.find(quote, pos + 1)
            if end == -1:
                raise fail(
                    f'Unterminated string in the argument of filter "default" on variable "{name}"',
                    pos,
                )
            filters.append(_make_default(template[pos + 1 : end]))
            has_default = True
            pos = skip_ws(end + 1)
        elif fname in FILTERS:
            if pos < n and template[pos] == ":":
                raise fail(f'Filter "{fname}" does not take an argument', pos)
            filters.append(FILTERS[fname])
        else:
            raise fail(
                f'Unknown filter "{fname}" on variable "{name}" (available: {_ALL_FILTER_NAMES})',
                fmatch.start(),
            )

    if template.startswith(_CLOSE, pos):
        return _Var(name, tuple(filters), has_default, start), pos + len(_CLOSE)
    if pos >= n or template.startswith(_OPEN, pos):
        raise unclosed()
    raise fail(
        f'Unexpected character {template[pos]!r} in the tag for variable "{name}"; expected "|" or "{_CLOSE}"',
        pos,
    )


@lru_cache(maxsize=512)
def _compile(template: str) -> _Compiled:
    parts: list[str | _Var] = []
    variables: list[_Var] = []
    pos = 0
    while True:
        start = template.find(_OPEN, pos)
        if start == -1:
            if pos < len(template):
                parts.append(template[pos:])
            break
        if start > pos:
            parts.append(template[pos:start])
        var, pos = _parse_tag(template, start)
        parts.append(var)
        variables.append(var)
    return _Compiled(tuple(parts), tuple(variables))


def variables_in(template: str) -> set[str]:
    """Names of all variables used in ``template`` (with or without a default).

    Raises :class:`TemplateError` if the template is malformed.
    """
    return {var.name for var in _compile(template).variables}


def validate(template: str, *, known: Collection[str]) -> None:
    """Check syntax and that every variable without a default is available.

    ``known`` are the recipient attribute names available for this send; the
    :data:`STANDARD_VARIABLES` (``first_name``, ``last_name``, ``name``,
    ``phone``) are always considered known. A variable that has a ``default``
    filter is always allowed. Raises :class:`TemplateError` naming the problem
    and its position; all unknown variables are reported in one error.
    """
    compiled = _compile(template)
    unknown: list[_Var] = []
    seen: set[str] = set()
    for var in compiled.variables:
        if var.has_default or var.name in known or var.name in STANDARD_VARIABLES:
            continue
        if var.name not in seen:
            seen.add(var.name)
            unknown.append(var)
    if not unknown:
        return
    listed = ", ".join(f'"{var.name}" (at {_where(template, var.position)})' for var in unknown)
    noun = "variable" if len(unknown) == 1 else "variables"
    example = unknown[0].name
    raise TemplateError(
        f"Unknown {noun}: {listed}. Use a known variable or give a default, "
        f'e.g. {_OPEN} {example}|default:"..." {_CLOSE}.',
        position=unknown[0].position,
        variables=tuple(var.name for var in unknown),
    )


def render(template: str, context: Mapping[str, object]) -> str:
    """Render ``template`` with values from ``context``.

    Missing or ``None`` values render as the ``default`` if one is given,
    otherwise as the empty string. Raises :class:`TemplateError` if the
    template is malformed.
    """
    parts = _compile(template).parts
    out: list[str] = []
    append = out.append
    get = context.get
    for part in parts:
        if type(part) is not _Var:  # not isinstance(): this loop runs for every message sent
            append(part)
            continue
        name, filters, _, _ = part
        value = get(name)
        text = "" if value is None else str(value)
        for apply in filters:
            text = apply(text)
        append(text)
    return "".join(out)
