from __future__ import annotations

from django.urls import path

from quotes import views

app_name = "quotes"
urlpatterns = [
    path("pilotage/devis/", views.quote_list, name="list"),
    path("pilotage/devis/nouveau/", views.quote_new, name="new"),
    path("pilotage/commandes/<int:order_pk>/devis/", views.quote_for_order, name="for_order"),
    path("pilotage/rapports/<int:report_pk>/devis/", views.quote_for_report, name="for_report"),
    path("pilotage/commandes/<int:order_pk>/devis/fournitures/", views.quote_for_materials, name="for_materials"),
    path("pilotage/devis/<int:pk>/", views.quote_edit, name="edit"),
    path("pilotage/devis/<int:pk>/objet/", views.quote_details, name="details"),
    path("pilotage/devis/<int:pk>/prix/", views.price_search, name="price_search"),
    path("pilotage/devis/<int:pk>/lignes/", views.line_add, name="line_add"),
    path("pilotage/devis/<int:pk>/lignes/<int:line_pk>/", views.line_update, name="line_update"),
    path("pilotage/devis/<int:pk>/lignes/<int:line_pk>/retirer/", views.line_remove, name="line_remove"),
    path("pilotage/devis/<int:pk>/pieces/", views.part_add, name="part_add"),
    path("pilotage/devis/<int:pk>/pieces/<int:part_pk>/retirer/", views.part_remove, name="part_remove"),
    path("pilotage/devis/<int:pk>/envoyer/", views.quote_send, name="send"),
    path("pilotage/devis/<int:pk>/reviser/", views.quote_revise, name="revise"),
    path("pilotage/devis/<int:pk>/annuler/", views.quote_cancel, name="cancel"),
    path("pilotage/devis/<int:pk>/apercu/", views.quote_preview, name="preview"),
    path("pilotage/devis/<int:pk>/pdf/", views.quote_pdf, name="pdf"),
    path("pilotage/devis/<int:pk>/pdf/etat/", views.quote_pdf_status, name="pdf_status"),
    path("pilotage/devis/<int:pk>/pdf/relancer/", views.quote_pdf_retry, name="pdf_retry"),
]
