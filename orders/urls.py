from __future__ import annotations

from django.urls import include, path

from orders import actions, offline, report_views, views

app_name = "orders"
urlpatterns = [
    # At the root, so that its scope covers every page of the technician's.
    path("sw.js", offline.service_worker, name="service_worker"),
    path("mes-commandes/", views.my_orders, name="my_orders"),
    path("pilotage/", include("orders.supervisor.urls")),
    path("commandes/<int:pk>/", views.order_detail, name="detail"),
    # The technician's actions, one URL each (commandes/<pk>/demarrer/, named
    # orders:start, ...), all served by one view: see the table in orders.actions.
    *(
        path(f"commandes/<int:pk>/{spec.path}/", views.order_action, {"action": spec.action}, name=spec.url)
        for spec in actions.technician_actions()
    ),
    path("commandes/<int:pk>/notes/", views.order_note, name="note"),
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
