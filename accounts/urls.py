from django.urls import path

from accounts import apis, views

app_name = "accounts"
urlpatterns = [
    path("senders/", views.senders_list, name="senders"),
    path("senders/new/", views.sender_create, name="sender_create"),
    path("senders/<int:pk>/edit/", views.sender_edit, name="sender_edit"),
    path("senders/<int:pk>/deactivate/", views.sender_deactivate, name="sender_deactivate"),
    path("tokens/", views.tokens, name="tokens"),
    path("tokens/<int:pk>/revoke/", views.token_revoke, name="token_revoke"),
    path("users/", views.users_list, name="users"),
    path("users/invite/", views.user_invite, name="user_invite"),
    path("users/<int:pk>/edit/", views.user_edit, name="user_edit"),
    path("audit/", views.audit_list, name="audit"),
    path("api/v1/accounts/me", apis.MeApi.as_view(), name="api_me"),
]
