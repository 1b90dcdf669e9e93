from django.apps import AppConfig


class EventsConfig(AppConfig):
    name = "events"
    verbose_name = "Event webhooks"

    def ready(self) -> None:
        from events import receivers  # noqa: F401  (connects them to the other apps' signals)
