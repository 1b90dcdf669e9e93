from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    name = "campaigns"

    def ready(self) -> None:
        from campaigns.sending import CampaignSending
        from messaging import hooks

        hooks.register(campaigns=CampaignSending())
