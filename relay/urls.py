"""Relay pages under /relay/ and REST endpoints under /api/v1/relay/ (both included from smsportal.urls)."""

from django.urls import path

from relay import apis, views

app_name = "relay"

web_urlpatterns = [
    path("relay/", views.conversation_list, name="list"),
    path("relay/<int:pk>", views.conversation_detail, name="detail"),
    path("relay/<int:pk>/close", views.conversation_close, name="close"),
]

# API ids are matched as any segment so a malformed one still gets the API's JSON 404 (apis._pk).
api_urlpatterns = [
    path("api/v1/relay/conversations", apis.ConversationListCreateApi.as_view(), name="api-conversations"),
    path("api/v1/relay/conversations/<str:pk>", apis.ConversationDetailApi.as_view(), name="api-conversation"),
    path("api/v1/relay/conversations/<str:pk>/close", apis.ConversationCloseApi.as_view(), name="api-close"),
    path("api/v1/relay/conversations/<str:pk>/transcript", apis.TranscriptApi.as_view(), name="api-transcript"),
    path("api/v1/relay/numbers", apis.RelayNumberListCreateApi.as_view(), name="api-numbers"),
    path("api/v1/relay/numbers/<str:pk>", apis.RelayNumberDetailApi.as_view(), name="api-number"),
]

urlpatterns = web_urlpatterns + api_urlpatterns
