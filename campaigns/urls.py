from django.urls import path

from campaigns import views

urlpatterns = [
    path("health", views.health, name="health"),
    path("l/<str:code>", views.short_link, name="short_link"),
    path("", views.dashboard, name="dashboard"),
    path("dashboard/running", views.dashboard_running, name="dashboard_running"),
    path("dashboard/first-run/dismiss", views.first_run_dismiss, name="first_run_dismiss"),
    path("campaigns/", views.campaign_list, name="campaign_list"),
    path("campaigns/new", views.campaign_new, name="campaign_new"),
    path("campaigns/preview", views.campaign_preview, name="campaign_preview"),
    path("campaigns/<int:pk>", views.campaign_detail, name="campaign_detail"),
    path("campaigns/<int:pk>/status", views.campaign_status, name="campaign_status"),
    path("campaigns/<int:pk>/messages.csv", views.campaign_export, name="campaign_export"),
    path("campaigns/<int:pk>/activity", views.campaign_activity, name="campaign_activity"),
    path("campaigns/<int:pk>/edit", views.campaign_edit, name="campaign_edit"),
    path("campaigns/<int:pk>/confirm", views.campaign_confirm, name="campaign_confirm"),
    path("campaigns/<int:pk>/pause", views.campaign_pause, name="campaign_pause"),
    path("campaigns/<int:pk>/resume", views.campaign_resume, name="campaign_resume"),
    path("campaigns/<int:pk>/cancel", views.campaign_cancel, name="campaign_cancel"),
    path("campaigns/<int:pk>/retry-failed", views.campaign_retry_failed, name="campaign_retry_failed"),
]
