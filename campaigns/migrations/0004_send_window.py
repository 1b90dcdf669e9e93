"""quiet_hours_start/end held the hours when sending is allowed: name them for what they hold."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("campaigns", "0003_message_moved_to_messaging"),
    ]

    operations = [
        migrations.RenameField(model_name="campaign", old_name="quiet_hours_start", new_name="send_window_start"),
        migrations.RenameField(model_name="campaign", old_name="quiet_hours_end", new_name="send_window_end"),
    ]
