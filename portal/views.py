from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.templatetags.static import static

from portal.models import Role


def home_url_for(user) -> str:
    """Where each role lands after signing in."""
    if user.role == Role.OFFICE or (user.is_superuser and user.role != Role.SUPERVISOR):
        return "admin:index"
    if user.role == Role.SUPERVISOR:
        return "orders:overview"
    return "orders:my_orders"


@login_required
def home(request: HttpRequest) -> HttpResponse:
    return redirect(home_url_for(request.user))


class PortalLoginView(auth_views.LoginView):
    redirect_authenticated_user = True


class PortalLogoutView(auth_views.LogoutView):
    """Signing out also empties the browser's caches for the site: on a shared
    phone, the pages the service worker kept (a technician's, or a supervisor's
    it came to control) do not outlive the session of whoever saw them."""

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        response = super().post(request, *args, **kwargs)
        response["Clear-Site-Data"] = '"cache"'
        return response


def favicon(request: HttpRequest) -> HttpResponse:
    """Browsers ask for /favicon.ico whatever the page says: the portal's icon
    (its static URL read at request time: in production, from the manifest)."""
    return redirect(static("icons/icon-192.png"), permanent=True)


def healthz(request: HttpRequest) -> JsonResponse:
    """For the load balancer: the process answers and the database too."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """A form refused for its CSRF token: the French page, as a 403."""
    return render(request, "403_csrf.html", status=403)
