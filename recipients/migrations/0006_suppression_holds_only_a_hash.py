"""Suppressions keep only a hash of the number (subject erasure keeps the opt-out, not the number)."""

import hashlib

from django.db import migrations, models


def hash_numbers(apps, schema_editor):
    Suppression = apps.get_model("recipients", "Suppression")
    for row in Suppression.objects.all().only("pk", "phone").iterator():
        # The same formula as recipients.models.suppression_key (a migration must not import the model).
        key = hashlib.sha256(f"smsportal-suppression:{row.phone}".encode()).hexdigest()
        Suppression.objects.filter(pk=row.pk).update(phone_hash=key)


class Migration(migrations.Migration):
    dependencies = [("recipients", "0005_drop_duplicate_recipient_indexes")]

    operations = [
        migrations.AddField(
            model_name="suppression", name="phone_hash", field=models.CharField(max_length=64, null=True)
        ),
        migrations.RunPython(hash_numbers, migrations.RunPython.noop),
        migrations.RemoveField(model_name="suppression", name="phone"),
        migrations.AlterField(
            model_name="suppression",
            name="phone_hash",
            field=models.CharField(
                help_text="suppression_key(phone), never the number", max_length=64, unique=True
            ),
        ),
    ]
