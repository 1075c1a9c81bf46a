from __future__ import annotations

from django.urls import path

from invoices import views

app_name = "invoices"
urlpatterns = [
    path("bureau/factures/", views.invoice_list, name="list"),
    path("bureau/factures/brouillons/", views.make_drafts, name="make_drafts"),
    path("bureau/factures/emettre/", views.issue_selected, name="issue_selected"),
    path("bureau/factures/emission/<int:batch_pk>/", views.batch_progress, name="batch"),
    path("bureau/factures/export/", views.export, name="export"),
    path("bureau/factures/pilotage/", views.overview_panel, name="overview_panel"),
    path("bureau/factures/<int:pk>/", views.invoice_detail, name="detail"),
    path("bureau/factures/<int:pk>/apercu/", views.invoice_preview, name="preview"),
    path("bureau/factures/<int:pk>/emettre/", views.invoice_issue, name="issue"),
    path("bureau/factures/<int:pk>/supprimer/", views.invoice_discard, name="discard"),
    path("bureau/factures/<int:pk>/pdf/", views.invoice_pdf, name="pdf"),
    path("bureau/factures/<int:pk>/avoir/", views.credit_note, name="credit_note"),
    path("bureau/factures/<int:pk>/reception/", views.receipt, name="receipt"),
    path("bureau/factures/<int:pk>/paiement/", views.payment, name="payment"),
    path("bureau/factures/<int:pk>/reclamation.pdf", views.claim_letter, name="claim"),
]
