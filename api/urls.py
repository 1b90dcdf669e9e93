from rest_framework.routers import SimpleRouter

from api.views.campaigns import CampaignViewSet
from api.views.imports import ImportJobViewSet
from api.views.lists import RecipientListViewSet
from api.views.messages import InboundMessageViewSet, MessageViewSet
from api.views.recipients import RecipientViewSet
from api.views.relay import RelayConversationViewSet, RelayNumberViewSet
from api.views.senders import AuthorizedSenderViewSet
from api.views.tokens import ApiTokenViewSet
from api.views.webhooks import OutboxEventViewSet, WebhookEndpointViewSet

app_name = "api"

router = SimpleRouter(trailing_slash=False)
router.register("lists", RecipientListViewSet, basename="list")
router.register("recipients", RecipientViewSet, basename="recipient")
router.register("campaigns", CampaignViewSet, basename="campaign")
router.register("messages", MessageViewSet, basename="message")
router.register("inbound-messages", InboundMessageViewSet, basename="inbound-message")
router.register("imports", ImportJobViewSet, basename="import")
router.register("senders", AuthorizedSenderViewSet, basename="sender")
router.register("relay/conversations", RelayConversationViewSet, basename="relay-conversation")
router.register("relay/numbers", RelayNumberViewSet, basename="relay-number")
router.register("tokens", ApiTokenViewSet, basename="token")
router.register("webhook-endpoints", WebhookEndpointViewSet, basename="webhook-endpoint")
router.register("webhook-events", OutboxEventViewSet, basename="webhook-event")

urlpatterns = router.urls
