from __future__ import annotations

from django.urls import path

from orders import actions, export_views, offline, report_views, views
from orders.supervisor import board, listing, order, overview, planning

app_name = "orders"
urlpatterns = [
    # At the root, so that its scope covers every page of the technician's.
    path("sw.js", offline.service_worker, name="service_worker"),
    path("mes-commandes/", views.my_orders, name="my_orders"),
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
    # The report's photos, sent ahead of it in parts (orders/report_photos.py), under the report's URL
    # (templates/orders/report_form.html gives the phone `rapport/photos/`).
    path("commandes/<int:order_id>/rapport/photos/<uuid:key>/", report_views.report_photo, name="report_photo"),
    path(
        "commandes/<int:order_id>/rapport/photos/<uuid:key>/retirer/",
        report_views.report_photo_remove,
        name="report_photo_remove",
    ),
    path("commandes/<int:order_id>/rapports/<int:report_id>/", report_views.report_detail, name="report_detail"),
    path(
        "commandes/<int:order_id>/rapports/<int:report_id>/relancer/",
        report_views.report_retry,
        name="report_retry",
    ),
    path("commandes/<int:order_id>/documents/deposer/", report_views.document_upload, name="document_upload"),
    path("documents/<int:document_id>/", report_views.document_download, name="document"),
    # The supervisors' pages, under /pilotage/.
    path("pilotage/", overview.overview, name="overview"),
    path("pilotage/commandes/", listing.order_list, name="order_list"),
    path("pilotage/commandes.csv", listing.order_list_csv, name="order_list_csv"),
    path("pilotage/commandes/<int:pk>/", order.supervisor_order, name="supervisor_order"),
    path("pilotage/commandes/<int:pk>/actions/<slug:action>/", order.supervisor_action, name="supervisor_action"),
    path("pilotage/commandes/<int:pk>/affectation/", order.supervisor_assign, name="supervisor_assign"),
    path("pilotage/commandes/<int:pk>/details/", order.supervisor_details, name="supervisor_details"),
    path("pilotage/commandes/<int:pk>/lignes/ajouter/", order.supervisor_line_add, name="supervisor_line_add"),
    path(
        "pilotage/commandes/<int:pk>/fournitures/",
        order.supervisor_materials_to_lines,
        name="supervisor_materials_to_lines",
    ),
    path(
        "pilotage/commandes/<int:pk>/lignes/<int:line_pk>/", order.supervisor_line_update, name="supervisor_line_update"
    ),
    path(
        "pilotage/commandes/<int:pk>/lignes/<int:line_pk>/retirer/",
        order.supervisor_line_remove,
        name="supervisor_line_remove",
    ),
    path("pilotage/commandes/<int:pk>/observations/", order.supervisor_observation, name="supervisor_observation"),
    path("pilotage/commandes/<int:pk>/prolongations/", order.supervisor_extension, name="supervisor_extension"),
    path("pilotage/commandes/<int:pk>/suspensions/", order.supervisor_stop, name="supervisor_stop"),
    path(
        "pilotage/commandes/<int:pk>/suspensions/<int:stop_pk>/reprise/",
        order.supervisor_restart,
        name="supervisor_restart",
    ),
    path("pilotage/commandes/<int:pk>/admission/", order.supervisor_admission, name="supervisor_admission"),
    path("pilotage/commandes/<int:pk>/penalites/", order.supervisor_late_scope, name="supervisor_late_scope"),
    path(
        "pilotage/commandes/<int:pk>/penalites/observations/",
        order.supervisor_penalty_answer,
        name="supervisor_penalty_answer",
    ),
    path(
        "pilotage/commandes/<int:pk>/courriers/<int:letter_pk>/dates/",
        order.supervisor_letter_dates,
        name="supervisor_letter_dates",
    ),
    path(
        "pilotage/commandes/<int:pk>/courriers/<int:letter_pk>/produire/",
        order.supervisor_letter_render,
        name="supervisor_letter_render",
    ),
    path(
        "pilotage/commandes/<int:pk>/courriers/<int:letter_pk>.pdf",
        order.supervisor_letter_pdf,
        name="supervisor_letter_pdf",
    ),
    path(
        "pilotage/commandes/<int:pk>/prolongations/<int:extension_pk>/reponse/",
        order.supervisor_extension_answer,
        name="supervisor_extension_answer",
    ),
    path(
        "pilotage/commandes/<int:pk>/messages/<int:message_pk>/renvoyer/",
        order.supervisor_resend,
        name="supervisor_resend",
    ),
    path(
        "pilotage/commandes/<int:pk>/messages/<int:message_pk>/abandonner/",
        order.supervisor_abandon,
        name="supervisor_abandon",
    ),
    path("bureau/exports/", export_views.export_list, name="export_list"),
    path("bureau/exports/<int:export_id>/", export_views.export_detail, name="export_detail"),
    path("bureau/exports/<int:export_id>/telecharger/", export_views.export_download, name="export_download"),
    path("pilotage/planning/", planning.planning, name="planning"),
    path("pilotage/planning/commandes/<int:pk>/", planning.planning_change, name="planning_change"),
    path("pilotage/repartition/", board.dispatch_board, name="dispatch_board"),
    path("pilotage/repartition/planifier/", board.dispatch_plan, name="dispatch_plan"),
    path("pilotage/repartition/verifier/", board.dispatch_check, name="dispatch_check"),
]
