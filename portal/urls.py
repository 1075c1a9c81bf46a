from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, reverse_lazy

from portal import notifications, views
from portal.password_reset import QueuedPasswordResetForm
from portal.tasks import RESET_TEMPLATES

admin.site.site_header = "Portail prestataire – administration"
admin.site.site_title = "Portail prestataire"
admin.site.index_title = "Bureau"
# « Voir le site »: the overview, which office staff may open ("/" brings them
# back to the admin, their home). Named, not imported: the core knows no app.
admin.site.site_url = reverse_lazy("orders:overview")

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    # Browsers ask for it whatever the page says: the portal's icon.
    path("favicon.ico", views.favicon),
    path("connexion/", views.PortalLoginView.as_view(), name="login"),
    path("deconnexion/", views.PortalLogoutView.as_view(), name="logout"),
    path(
        "mot-de-passe/oubli/",
        auth_views.PasswordResetView.as_view(form_class=QueuedPasswordResetForm, **RESET_TEMPLATES),
        name="password_reset",
    ),
    path("mot-de-passe/oubli/envoye/", auth_views.PasswordResetDoneView.as_view(), name="password_reset_done"),
    path(
        "mot-de-passe/nouveau/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "mot-de-passe/nouveau/fait/",
        auth_views.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
    path("preferences/notifications/", notifications.preferences, name="notification_preferences"),
    path("", include("orders.urls")),
    path("", include("quotes.urls")),
    path("", include("invoices.urls")),
    path("relais/", include("portal.relay.urls")),
    path("admin/", admin.site.urls),
]

if settings.SANDBOX_ENABLED:
    urlpatterns.append(path("sandbox/", include("portal.sandbox.urls")))

# Uploaded files (reports, photos, signatures) are never served from /media/,
# not even in development: only through views that check who may see them.
