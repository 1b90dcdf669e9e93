"""Relay pages under /relay/ (included from smsportal.urls). The REST endpoints are the api app's
(api/views/relay.py, /api/v1/relay/...)."""

from django.urls import path

from relay import views

app_name = "relay"

urlpatterns = [
    path("relay/", views.conversation_list, name="list"),
    path("relay/<int:pk>", views.conversation_detail, name="detail"),
    path("relay/<int:pk>/close", views.conversation_close, name="close"),
]
