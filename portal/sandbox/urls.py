"""Mounted at /sandbox/ when settings.SANDBOX_ENABLED. The auth base is
<site>/sandbox and the API base <site>/sandbox/api, with Intent's own paths.

Control endpoints for tests and benchmarks (no authentication):
- GET/POST comportement.json: the misbehaviour switches (POST any subset);
- GET logs.json?since=<sequence>&limit=<=10000: accepted logs in order,
  duplicates included (also ?reference=, ?contractReference=);
- GET rejected.json?since=<id>: log POSTs answered 400;
- POST reset.json: wipes operations, logs, documents, webhooks sent and the
  switches (keeps clients, webhook targets, contracts and assets).
"""

from __future__ import annotations

from django.urls import path, re_path

from portal.sandbox import api, views

app_name = "sandbox"
urlpatterns = [
    # The Intent API.
    path("oauth/token", api.token, name="token"),
    path(
        "api/operations/v2/interventions/logs",
        api.post_log,
        {"kind": "intervention"},
        name="api_intervention_logs",
    ),
    path("api/operations/v2/quotations/logs", api.post_log, {"kind": "quotation"}, name="api_quotation_logs"),
    path(
        "api/operations/v2/quotations/<str:reference>",
        api.get_operation,
        {"kind": "quotation"},
        name="api_quotation",
    ),
    path(
        "api/operations/v2/reservations/logs",
        api.post_log,
        {"kind": "reservation"},
        name="api_reservation_logs",
    ),
    path("api/operations/v2/operations", api.list_operations, name="api_operations"),
    path("api/operations/v2/operations/<str:reference>", api.get_operation, name="api_operation"),
    path("api/documents/v1/documents", api.documents, name="api_documents"),
    path("api/contracts/v1/contracts/<str:reference>", api.get_contract, name="api_contract"),
    path("api/assets/v1/assets/<str:code>", api.get_asset, name="api_asset"),
    re_path(r"^(?:api|oauth)/", api.not_found),
    # The manager's pages.
    path("", views.index, name="index"),
    path("operations/<str:contract>/<str:reference>/", views.operation_detail, name="operation"),
    path(
        "operations/<str:contract>/<str:reference>/accepter/",
        views.quote_decision,
        {"accepted": True},
        name="quote_accept",
    ),
    path(
        "operations/<str:contract>/<str:reference>/refuser/",
        views.quote_decision,
        {"accepted": False},
        name="quote_refuse",
    ),
    path("nouvelle-demande/", views.new_request, name="new_request"),
    path("donnees-exemple/", views.seed, name="seed"),
    path("webhooks/<int:pk>/renvoyer/", views.webhook_resend, name="webhook_resend"),
    path("documents/<uuid:pk>/", views.document_download, name="document_download"),
    path("comportement/", views.behaviour_page, name="behaviour"),
    path("remise-a-zero/", views.reset_page, name="reset"),
    path("acces/", views.access, name="access"),
    path("acces/clients/<int:pk>/supprimer/", views.client_delete, name="client_delete"),
    path("acces/cibles/<int:pk>/basculer/", views.target_toggle, name="target_toggle"),
    path("acces/cibles/<int:pk>/supprimer/", views.target_delete, name="target_delete"),
    # Control endpoints for tests and benchmarks.
    path("comportement.json", views.behaviour_json, name="behaviour_json"),
    path("logs.json", views.logs_json, name="logs_json"),
    path("rejected.json", views.rejected_json, name="rejected_json"),
    path("reset.json", views.reset_json, name="reset_json"),
]
