from __future__ import annotations

from django.urls import path

from portal.relay import views

app_name = "relay"
urlpatterns = [
    path("webhook/<str:token>/", views.webhook, name="webhook"),
    path("erreurs/", views.error_queue, name="error_queue"),
    path(
        "erreurs/<int:message_id>/<str:action>/",
        views.resolve_message,
        name="resolve",
    ),
]
