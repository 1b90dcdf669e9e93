from rest_framework.routers import SimpleRouter

from api.views.campaigns import CampaignViewSet
from api.views.imports import ImportJobViewSet
from api.views.lists import RecipientListViewSet
from api.views.messages import InboundMessageViewSet, MessageViewSet
from api.views.recipients import RecipientViewSet
from api.views.relay import RelayConversationViewSet, RelayNumberViewSet
from api.views.senders import AuthorizedSenderViewSet

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

urlpatterns = router.urls
