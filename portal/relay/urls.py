from __future__ import annotations

from django.urls import path

from portal.relay import views

app_name = "relay"
urlpatterns = [
    path("webhook/<str:token>/", views.webhook, name="webhook"),
]
