"""Message moves from campaigns to messaging: the table is renamed, nothing is copied."""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


def move_content_type(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    ContentType.objects.filter(app_label="campaigns", model="message").update(app_label="messaging")


def move_content_type_back(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    ContentType.objects.filter(app_label="messaging", model="message").update(app_label="campaigns")


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ("campaigns", "0002_message_due_at_default"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("recipients", "0002_importjob_importrowerror"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    "ALTER TABLE campaigns_message RENAME TO messaging_message",
                    "ALTER TABLE messaging_message RENAME TO campaigns_message",
                ),
                migrations.RunSQL(
                    "ALTER SEQUENCE campaigns_message_id_seq RENAME TO messaging_message_id_seq",
                    "ALTER SEQUENCE messaging_message_id_seq RENAME TO campaigns_message_id_seq",
                ),
            ],
            state_operations=[
                migrations.CreateModel(
                    name='Message',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('kind', models.CharField(choices=[('campaign', 'Campaign'), ('single', 'Single send'), ('reply', 'Keyword reply'), ('confirmation', 'Opt-in confirmation'), ('relay', 'Relay')], default='campaign', max_length=12)),
                        ('to', models.CharField(max_length=16)),
                        ('sender', models.CharField(blank=True, help_text='Chosen when claimed', max_length=16)),
                        ('provider', models.CharField(blank=True, max_length=20)),
                        ('body', models.TextField(blank=True, help_text='Rendered when claimed')),
                        ('media_urls', models.JSONField(blank=True, default=list)),
                        ('segments', models.PositiveSmallIntegerField(default=0)),
                        ('status', models.CharField(choices=[('pending', 'Waiting'), ('claimed', 'Claimed'), ('sending', 'Sending'), ('unknown', 'Outcome unknown'), ('queued', 'Queued at provider'), ('sent', 'Sent'), ('delivered', 'Delivered'), ('undelivered', 'Undelivered'), ('failed', 'Failed'), ('skipped', 'Skipped (no consent)'), ('cancelled', 'Cancelled'), ('expired', 'Expired')], default='pending', max_length=12)),
                        ('provider_message_id', models.CharField(blank=True, max_length=100)),
                        ('error_code', models.CharField(blank=True, max_length=20)),
                        ('error_text', models.CharField(blank=True, max_length=255)),
                        ('error_permanent', models.BooleanField(blank=True, help_text='Kind of the last error', null=True)),
                        ('attempts', models.PositiveSmallIntegerField(default=0)),
                        ('due_at', models.DateTimeField(default=django.utils.timezone.now, help_text='Not before this time')),
                        ('lease_expires_at', models.DateTimeField(blank=True, null=True)),
                        ('enqueued_at', models.DateTimeField(blank=True, null=True)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('sent_at', models.DateTimeField(blank=True, help_text='Accepted by the provider', null=True)),
                        ('finished_at', models.DateTimeField(blank=True, null=True)),
                        ('campaign', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='messages', to='campaigns.campaign')),
                        ('created_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, to=settings.AUTH_USER_MODEL)),
                        ('recipient', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='messages', to='recipients.recipient')),
                    ],
                    options={
                        'ordering': ['id'],
                        'indexes': [models.Index(fields=['campaign', 'status'], name='message_campaign_status'), models.Index(condition=models.Q(('status__in', ['pending', 'claimed', 'sending', 'unknown'])), fields=['status', 'due_at'], name='message_open'), models.Index(condition=models.Q(('enqueued_at__isnull', True), ('status', 'pending')), fields=['campaign', 'due_at', 'id'], name='message_undispatched'), models.Index(condition=models.Q(('enqueued_at__isnull', False), ('status', 'pending')), fields=['campaign'], name='message_dispatched'), models.Index(fields=['provider_message_id'], name='message_provider_id'), models.Index(fields=['recipient', 'sender'], name='message_recipient_sender')],
                        'constraints': [models.UniqueConstraint(fields=('campaign', 'recipient'), name='unique_campaign_recipient')],
                    },
                ),
            ],
        ),
        migrations.RunPython(move_content_type, move_content_type_back),
    ]
