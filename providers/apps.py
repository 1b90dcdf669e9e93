from django.apps import AppConfig


class ProvidersConfig(AppConfig):
    name = "providers"
    verbose_name = "SMS providers"

    def ready(self) -> None:
        from providers import prices, tasks  # noqa: F401  (connects the drain scheduler; registers the price task)
