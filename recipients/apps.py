from django.apps import AppConfig


class RecipientsConfig(AppConfig):
    name = "recipients"

    def ready(self) -> None:
        from recipients import receivers  # noqa: F401
