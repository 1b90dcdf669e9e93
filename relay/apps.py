from django.apps import AppConfig


class RelayConfig(AppConfig):
    name = "relay"
    verbose_name = "Private relay"

    def ready(self) -> None:
        from recipients.inbound import register_inbound_router
        from relay.services import relay_route_inbound

        # Relay numbers' inbound messages belong to their conversation, not the inbox.
        register_inbound_router(relay_route_inbound)
