from django.apps import AppConfig


class RecipientsConfig(AppConfig):
    name = "recipients"

    def ready(self) -> None:
        from messaging import hooks
        from recipients import receivers  # noqa: F401  (connects them)
        from recipients.consent import may_receive

        hooks.register(consent_rule=may_receive)
