"""Fewer index entries per consent event (issue 21): every imported row with a stated consent writes one.

- created_at's index: no query reads events by time across recipients (a recipient's history uses
  recipient_id and sorts its few rows; the export goes in id order);
- actor_id's index becomes partial (``consentevent_actor``, where actor_id is set): deleting a user
  still finds their events by it, and events without an actor (command-line imports, texts,
  providers) write no entry.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("recipients", "0007_phone_collation_c_and_rowerror_index"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterField(
            model_name="consentevent",
            name="actor",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AlterField(
            model_name="consentevent",
            name="created_at",
            field=models.DateTimeField(auto_now_add=True),
        ),
        migrations.AddIndex(
            model_name="consentevent",
            index=models.Index(
                condition=models.Q(("actor__isnull", False)), fields=["actor"], name="consentevent_actor"
            ),
        ),
        # The AlterFields alone leave both indexes in place (sqlmigrate: no-op), as in 0007.
        migrations.RunSQL(
            [
                "DROP INDEX IF EXISTS recipients_consentevent_created_at_a2aa38d2",
                "DROP INDEX IF EXISTS recipients_consentevent_actor_id_ceee8722",
            ],
            reverse_sql=[
                "CREATE INDEX IF NOT EXISTS recipients_consentevent_created_at_a2aa38d2 "
                "ON recipients_consentevent (created_at)",
                "CREATE INDEX IF NOT EXISTS recipients_consentevent_actor_id_ceee8722 "
                "ON recipients_consentevent (actor_id)",
            ],
        ),
    ]
