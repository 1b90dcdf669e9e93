"""Array literals read back by PostgreSQL exactly as psycopg's list binding is."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from django.db import DataError, connection

from smsportal import pgarray

pytestmark = pytest.mark.django_db

TEXTS = [
    "",
    "plain",
    "NULL",
    "null",
    'a "quoted" word',
    "back\\slash\\",
    "{braces},commas, and spaces ",
    "  leading and trailing  ",
    "line\nbreak\ttab",
    "it's",
    "Grüße 👋 你好",
    '\\"',
    None,
]


def read_back(param, cast):
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT %s::{cast}", [param])
        return cursor.fetchone()[0]


@pytest.mark.parametrize(
    ("values", "cast"),
    [
        (TEXTS, "text[]"),
        ([1, -2, 0, 2**62, None], "bigint[]"),
        ([True, False, None], "boolean[]"),
        (
            [
                datetime(2026, 12, 2, 7, 30, 1, 123456, tzinfo=UTC),
                datetime(2026, 3, 8, 2, 30, tzinfo=timezone(timedelta(hours=-5))),
                None,
            ],
            "timestamptz[]",
        ),
        (['{"a": "b \\" c"}', "[1, 2]", None], "text[]"),
        ([], "bigint[]"),
    ],
)
def test_the_literal_reads_back_as_the_list_does(values, cast):
    literal = pgarray.array(values)

    assert isinstance(literal, str)
    assert read_back(literal, cast) == read_back(list(values), cast) == list(values)


def test_ints_takes_any_iterable_of_integers():
    ids = (i * 7919 for i in range(500))

    assert read_back(pgarray.ints(ids), "bigint[]") == [i * 7919 for i in range(500)]


@pytest.mark.parametrize("values", [[1.5, 2.0], [datetime(2026, 1, 1)], [1, 2.5]])
def test_what_it_does_not_write_is_left_to_psycopg(values):
    assert pgarray.array(values) == values


@pytest.mark.parametrize("param", [pgarray.array(["a\x00b"]), ["a\x00b"]])
def test_a_nul_byte_is_refused_as_before(param):
    with pytest.raises(DataError, match="NUL"):
        read_back(param, "text[]")
