"""Message now lives in the messaging app (messaging 0001 renamed its table)."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("campaigns", "0002_message_due_at_default"),
        ("messaging", "0001_initial"),
        ("relay", "0002_message_moved_to_messaging"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(state_operations=[migrations.DeleteModel(name="Message")]),
    ]
