"""Recipient pages under /recipients/, and the inbox at /inbox (included at the root by smsportal.urls)."""

from django.urls import include, path
from django.views.generic import RedirectView

from recipients import views

app_name = "recipients"

recipient_urlpatterns = [
    path("lists/", views.list_index, name="list_index"),
    path("lists/new/", views.list_create, name="list_create"),
    path("lists/<int:pk>/", views.list_detail, name="list_detail"),
    path("lists/<int:pk>/rename/", views.list_rename, name="list_rename"),
    path("lists/<int:pk>/archive/", views.list_archive, name="list_archive"),
    path("lists/<int:pk>/members/add/", views.list_add_member, name="list_add_member"),
    path("lists/<int:pk>/members/<int:recipient_pk>/remove/", views.list_remove_member, name="list_remove_member"),
    path("lists/<int:pk>/export.csv", views.list_export, name="list_export"),
    path("lists/<int:pk>/import/", views.list_import, name="list_import"),
    path("imports/<int:pk>/", views.import_detail, name="import_detail"),
    path("imports/<int:pk>/mapping/", views.import_mapping, name="import_mapping"),
    path("imports/<int:pk>/rejected.csv", views.import_errors_csv, name="import_errors_csv"),
    path("consent.csv", views.consent_export, name="consent_export"),
    # The inbox used to live here; old links and bookmarks keep working.
    path(
        "inbox/",
        RedirectView.as_view(pattern_name="recipients:inbox", permanent=True, query_string=True),
        name="inbox_old",
    ),
    path("<int:pk>/", views.recipient_detail, name="recipient_detail"),
    path("<int:pk>/opt-out/", views.recipient_opt_out, name="recipient_opt_out"),
    path("<int:pk>/confirm/", views.recipient_confirm, name="recipient_confirm"),
    path("<int:pk>/consent-override/", views.recipient_consent_override, name="recipient_consent_override"),
]

urlpatterns = [
    path("inbox", views.inbox, name="inbox"),
    path("inbox/<int:pk>/reply", views.inbox_reply, name="inbox_reply"),
    path("recipients/", include(recipient_urlpatterns)),
]
