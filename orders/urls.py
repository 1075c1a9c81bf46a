from __future__ import annotations

from django.urls import path

from orders import views

app_name = "orders"
urlpatterns = [
    path("mes-commandes/", views.my_orders, name="my_orders"),
    path("pilotage/", views.overview, name="overview"),
]
