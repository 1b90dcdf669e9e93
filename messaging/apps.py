from typing import Any

from django.apps import AppConfig


class MessagingConfig(AppConfig):
    name = "messaging"
    verbose_name = "Messages"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from messaging import receivers  # noqa: F401  (connects the delivery-report receiver)

        post_migrate.connect(_ensure_partitions, sender=self)


def _ensure_partitions(*, using: str, plan: Any = None, **kwargs: Any) -> None:
    """After ``migrate``: this month's and the next months' partitions exist (skipped before 0005 or when migrating back)."""
    from django.db import connections

    from messaging import partitions

    with connections[using].cursor() as cursor:
        cursor.execute("SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", [partitions.TABLE])
        row = cursor.fetchone()
    if row and row[0] == "p":
        partitions.ensure_partitions()
