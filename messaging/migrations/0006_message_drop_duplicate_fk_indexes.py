"""Drop the single-column indexes on messages' campaign and recipient.

``unique_campaign_recipient`` (campaign, recipient, month) and ``message_recipient_sender``
(recipient, sender) lead with the same columns and serve every lookup these did, while each status
move wrote both again. Only the indexes go (dropping a partitioned index drops its partitions'):
Django's AlterField would also drop and re-add the foreign keys, validating every row under lock.
"""

import django.db.models.deletion
from django.db import migrations, models

INDEXES = {
    "campaign_id": "campaigns_message_campaign_id_de4b21fa",
    "recipient_id": "campaigns_message_recipient_id_bfaf670b",
}


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0010_campaign_audience_total"),
        ("messaging", "0005_message_partitioned_by_month"),
        ("recipients", "0006_suppression_holds_only_a_hash"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    sql=f'DROP INDEX IF EXISTS "{name}"',
                    reverse_sql=f'CREATE INDEX IF NOT EXISTS "{name}" ON "messaging_message" ("{column}")',
                )
                for column, name in INDEXES.items()
            ],
            state_operations=[
                migrations.AlterField(
                    model_name="message",
                    name="campaign",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="messages",
                        to="campaigns.campaign",
                    ),
                ),
                migrations.AlterField(
                    model_name="message",
                    name="recipient",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="messages",
                        to="recipients.recipient",
                    ),
                ),
            ],
        )
    ]
