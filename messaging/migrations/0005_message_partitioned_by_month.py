"""messaging_message becomes a table partitioned by month (messaging/partitions.py says why).

The table is rebuilt: the old one is renamed, a partitioned one with the same columns,
defaults, checks, indexes and foreign keys is created, with a partition for every month that
has rows, the next few months and a DEFAULT one; rows are copied in one statement, the id
sequence carries on from where it was, and the old table is dropped. All in the migration's
transaction, under an exclusive lock: a failure leaves the table as it was. On an empty table
(a fresh install, the test database) it takes milliseconds; on a populated one, about as long
as copying the table (stop workers and web first; see docs/operations.md).

Reversing it rebuilds an ordinary table the same way. PostgreSQL before 17 has no identity
columns in partitioned tables, so ``id`` draws from an owned sequence (as ``serial`` does).
"""

import django.db.models.functions.datetime
from django.conf import settings
from django.db import migrations, models

import messaging.models

TABLE = "messaging_message"
OLD = "messaging_message_unpartitioned"
SEQUENCE = "messaging_message_id_seq"
MONTH_DEFAULT = "(date_trunc('month', now() AT TIME ZONE 'UTC'))::date"
# Same rule as messaging.partitions.campaign_month: a campaign's rows take the month of its launch.
ROW_MONTH = (
    "(date_trunc('month', COALESCE(c.launched_at, c.created_at, m.created_at) AT TIME ZONE 'UTC'))::date"
)


def _fetch(cursor, sql, params=()):
    cursor.execute(sql, params)
    return cursor.fetchall()


def _rebuild(schema_editor, *, partitioned):
    cursor = schema_editor.connection.cursor()
    cursor.execute(f"LOCK TABLE {TABLE} IN ACCESS EXCLUSIVE MODE")
    # What the new table must have again: indexes (not those behind the primary key / unique
    # constraint, which change shape) and outgoing foreign keys, as PostgreSQL itself prints them.
    index_defs = [
        row[0]
        for row in _fetch(
            cursor,
            "SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i "
            "WHERE i.indrelid = %s::regclass "
            "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid) "
            "ORDER BY i.indexrelid",
            [TABLE],
        )
    ]
    fk_defs = _fetch(
        cursor,
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'f'",
        [TABLE],
    )
    # Foreign keys pointing at the table cannot survive (relay's is db_constraint=False since relay 0004).
    for table, name in _fetch(
        cursor,
        "SELECT conrelid::regclass::text, conname FROM pg_constraint WHERE confrelid = %s::regclass AND contype = 'f'",
        [TABLE],
    ):
        cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    (sequence,) = _fetch(cursor, "SELECT pg_get_serial_sequence(%s, 'id')", [TABLE])[0]
    (last_id,) = _fetch(cursor, f"SELECT last_value FROM {sequence}")[0]
    (is_identity,) = _fetch(
        cursor,
        "SELECT attidentity <> '' FROM pg_attribute WHERE attrelid = %s::regclass AND attname = 'id'",
        [TABLE],
    )[0]

    cursor.execute(f"ALTER TABLE {TABLE} RENAME TO {OLD}")
    if is_identity:
        cursor.execute(f"ALTER TABLE {OLD} ALTER COLUMN id DROP IDENTITY")  # drops its sequence
    else:
        cursor.execute(f"ALTER TABLE {OLD} ALTER COLUMN id DROP DEFAULT")
        cursor.execute(f"DROP SEQUENCE {sequence}")
    cursor.execute(f"CREATE SEQUENCE {SEQUENCE}")

    columns = [
        row[0]
        for row in _fetch(
            cursor,
            "SELECT quote_ident(attname) FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 "
            "AND NOT attisdropped AND attname <> 'month' ORDER BY attnum",
            [OLD],
        )
    ]
    names = ", ".join(columns)
    old_columns = ", ".join(f"m.{c}" for c in columns)
    if partitioned:
        cursor.execute(
            f"CREATE TABLE {TABLE} (LIKE {OLD} INCLUDING DEFAULTS INCLUDING CONSTRAINTS, "
            f"month date NOT NULL DEFAULT {MONTH_DEFAULT}) PARTITION BY RANGE (month)"
        )
        cursor.execute(f"CREATE TABLE {TABLE}_default PARTITION OF {TABLE} DEFAULT")
        months = _fetch(
            cursor,
            f"SELECT DISTINCT {ROW_MONTH} FROM {OLD} m LEFT JOIN campaigns_campaign c ON c.id = m.campaign_id "
            f"UNION SELECT generate_series({MONTH_DEFAULT}, {MONTH_DEFAULT} + interval '3 months', "
            "interval '1 month')::date ORDER BY 1",
        )
        for (month,) in months:
            cursor.execute(
                f"CREATE TABLE {TABLE}_p{month:%Y_%m} PARTITION OF {TABLE} "
                f"FOR VALUES FROM ('{month.isoformat()}') TO (('{month.isoformat()}'::date + interval '1 month')::date)"
            )
        cursor.execute(
            f"INSERT INTO {TABLE} ({names}, month) SELECT {old_columns}, {ROW_MONTH} "
            f"FROM {OLD} m LEFT JOIN campaigns_campaign c ON c.id = m.campaign_id"
        )
    else:
        cursor.execute(f"CREATE TABLE {TABLE} (LIKE {OLD} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
        cursor.execute(f"ALTER TABLE {TABLE} DROP COLUMN month")
        cursor.execute(f"INSERT INTO {TABLE} ({names}) SELECT {old_columns} FROM {OLD} m")
    cursor.execute(f"ALTER TABLE {TABLE} ALTER COLUMN id SET DEFAULT nextval('{SEQUENCE}')")
    cursor.execute(f"ALTER SEQUENCE {SEQUENCE} OWNED BY {TABLE}.id")
    cursor.execute(
        f"SELECT setval('{SEQUENCE}', GREATEST((SELECT max(id) FROM {TABLE}), %s, 1), "
        f"(SELECT max(id) FROM {TABLE}) IS NOT NULL OR %s > 1)",
        [last_id, last_id],
    )
    cursor.execute(f"DROP TABLE {OLD}")

    key = "id, month" if partitioned else "id"
    unique = "campaign_id, recipient_id, month" if partitioned else "campaign_id, recipient_id"
    cursor.execute(f"ALTER TABLE {TABLE} ADD CONSTRAINT {TABLE}_pkey PRIMARY KEY ({key})")
    cursor.execute(f"ALTER TABLE {TABLE} ADD CONSTRAINT unique_campaign_recipient UNIQUE ({unique})")
    for definition in index_defs:
        cursor.execute(definition.replace(" ON ONLY ", " ON ", 1))  # a partitioned parent's own index prints ONLY
    for name, definition in fk_defs:
        cursor.execute(f'ALTER TABLE {TABLE} ADD CONSTRAINT "{name}" {definition}')


def partition(apps, schema_editor):
    _rebuild(schema_editor, partitioned=True)


def unpartition(apps, schema_editor):
    _rebuild(schema_editor, partitioned=False)


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0008_short_links_and_link_tracking"),
        ("messaging", "0004_message_created_at_brin_for_retention"),
        ("recipients", "0006_suppression_holds_only_a_hash"),
        ("relay", "0004_message_link_without_db_constraint"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunPython(partition, unpartition)],
            state_operations=[
                migrations.RemoveConstraint(model_name="message", name="unique_campaign_recipient"),
                migrations.AddField(
                    model_name="message",
                    name="month",
                    field=models.DateField(
                        db_default=messaging.models.UTCMonthStart(django.db.models.functions.datetime.Now()),
                        editable=False,
                    ),
                ),
                migrations.AddConstraint(
                    model_name="message",
                    constraint=models.UniqueConstraint(
                        fields=("campaign", "recipient", "month"), name="unique_campaign_recipient"
                    ),
                ),
            ],
        ),
    ]
