from __future__ import annotations

from django.urls import include, path

from orders import offline, report_views, views

app_name = "orders"
urlpatterns = [
    # At the root, so that its scope covers every page of the technician's.
    path("sw.js", offline.service_worker, name="service_worker"),
    path("mes-commandes/", views.my_orders, name="my_orders"),
    path("pilotage/", include("orders.supervisor.urls")),
    path("commandes/<int:pk>/", views.order_detail, name="detail"),
    path("commandes/<int:pk>/prendre-en-compte/", views.order_acknowledge, name="acknowledge"),
    path("commandes/<int:pk>/planifier/", views.order_plan, name="plan"),
    path("commandes/<int:pk>/demarrer/", views.order_start, name="start"),
    path("commandes/<int:pk>/suspendre/", views.order_suspend, name="suspend"),
    path("commandes/<int:pk>/reprendre/", views.order_resume, name="resume"),
    path("commandes/<int:pk>/terminer/", views.order_finish, name="finish"),
    path("commandes/<int:pk>/avancement/", views.order_progress, name="progress"),
    path("commandes/<int:pk>/notes/", views.order_note, name="note"),
    path("commandes/<int:pk>/lignes/<int:line_pk>/", views.order_mark_line, name="mark_line"),
    # Intervention reports and documents.
    path("commandes/<int:order_id>/rapport/", report_views.report_create, name="report_create"),
    path("commandes/<int:order_id>/rapports/<int:report_id>/", report_views.report_detail, name="report_detail"),
    path(
        "commandes/<int:order_id>/rapports/<int:report_id>/relancer/",
        report_views.report_retry,
        name="report_retry",
    ),
    path("commandes/<int:order_id>/documents/deposer/", report_views.document_upload, name="document_upload"),
    path("documents/<int:document_id>/", report_views.document_download, name="document"),
]
