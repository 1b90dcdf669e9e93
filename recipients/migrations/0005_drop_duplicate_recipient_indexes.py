"""Every import row wrote about 15 index entries; these indexes duplicated others or served no query.

- membership_list_recipient: identical to the unique constraint unique_membership;
- the membership.recipient_list_id index: a prefix of unique_membership;
- recipients_recipient.phone's varchar_pattern_ops copy (Django's default next to a unique
  CharField): nothing filters phone with a prefix LIKE; the unique index stays (ON CONFLICT);
- consent_status's varchar_pattern_ops copy, likewise; its plain index stays, renamed.
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('recipients', '0004_importjob_draft_mapping_consent_evidence'),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name='membership',
            name='membership_list_recipient',
        ),
        migrations.AlterField(
            model_name='membership',
            name='recipient_list',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='memberships', to='recipients.recipientlist'),
        ),
        migrations.AlterField(
            model_name='recipient',
            name='consent_status',
            field=models.CharField(choices=[('pending', 'Pending'), ('opted_in', 'Opted in'), ('opted_out', 'Opted out')], default='pending', max_length=10),
        ),
        migrations.AddIndex(
            model_name='recipient',
            index=models.Index(fields=['consent_status'], name='recipient_consent_status'),
        ),
        migrations.RunSQL(
            "DROP INDEX IF EXISTS recipients_recipient_phone_2fec54a9_like",
            reverse_sql="CREATE INDEX IF NOT EXISTS recipients_recipient_phone_2fec54a9_like "
            "ON recipients_recipient (phone varchar_pattern_ops)",
        ),
    ]
