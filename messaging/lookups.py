"""``pk__any=ids``: ``id = ANY(%s)`` with the ids as one array parameter.

Django's ``pk__in`` writes one placeholder per id; psycopg then builds the query string of a
500-id batch on the client every time (it caches only short queries), which showed up at
~7% of a send worker's CPU (bench/README.md, "Engine runs").
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from django.db.models import BigAutoField, Lookup, Q

from smsportal import pgarray

if TYPE_CHECKING:  # the stubs make Lookup generic; at run time it is not subscriptable
    _Lookup = Lookup[int]
else:
    _Lookup = Lookup


@BigAutoField.register_lookup
class AnyOf(_Lookup):
    lookup_name = "any"
    prepare_rhs = False

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, Any]:  # one array parameter
        lhs, lhs_params = self.process_lhs(compiler, connection)
        return f"{lhs} = ANY(%s::bigint[])", (*lhs_params, pgarray.ints(self.rhs))


def among(ids: Iterable[int]) -> Q:
    """``pk = ANY(ids)`` as a filter (a ``Q``: the stubs would type ``pk__any=`` as one int)."""
    return Q(pk__any=list(ids))
