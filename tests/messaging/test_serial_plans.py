"""Worker processes read a batch's rows without parallel query workers (issue 21).

At a million rows PostgreSQL planned the send path's lookups by id parallel: two parallel
workers started for each 500-row read, about 15 ms and CPU the sends needed.
"""

import pytest
from django.db import connection

from messaging.lookups import among
from messaging.models import Message
from smsportal.celery import _serial_plans_in_workers, serial_plans

pytestmark = pytest.mark.django_db(transaction=True)  # the connection is reopened with the worker's options


@pytest.fixture
def worker_connection():
    options = dict(connection.settings_dict.get("OPTIONS", {}))
    connection.close()
    _serial_plans_in_workers()  # what celery's worker_init does before the pool forks
    yield connection
    connection.close()
    connection.settings_dict["OPTIONS"] = options


def _consent_lookup_plan() -> str:
    # The chunk's consent read (messaging.engine._send_chunk), where the planner finds parallel cheapest:
    # with these costs it plans a Gather whenever it may.
    with connection.cursor() as cursor:
        for setting in (
            "parallel_setup_cost",
            "parallel_tuple_cost",
            "min_parallel_table_scan_size",
            "min_parallel_index_scan_size",
        ):
            cursor.execute(f"SET {setting} = 0")
    return Message.objects.filter(among([1, 2, 3])).values_list("pk", "recipient__consent_status").explain()


def test_a_workers_lookup_of_rows_by_id_plans_no_parallel_workers(worker_connection):
    assert "Gather" not in _consent_lookup_plan()


def test_the_web_keeps_parallel_plans():
    assert "Gather" in _consent_lookup_plan()  # (and this is a plan the setting changes)


def test_the_worker_setting_keeps_options_from_the_database_url():
    settings_dict = {"OPTIONS": {"options": "-c statement_timeout=5000"}}
    serial_plans(settings_dict)
    serial_plans(settings_dict)  # (worker_init once per worker; twice changes nothing)

    assert settings_dict["OPTIONS"]["options"] == "-c statement_timeout=5000 -c max_parallel_workers_per_gather=0"
