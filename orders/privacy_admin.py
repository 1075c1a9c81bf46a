"""The admin's pages about personal data (seed 004 §5): the erasures at the
end of contracts, with what the next ones would erase (a dry run), and the
log of who saw occupants' contact details. Imported by orders/admin.py."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from orders import erasure
from orders.models import Order, ReportPhoto
from portal.models import Client, Company, ContactAccess, Contract, ContractErasure, ReversibilityExport
from portal.relay.models import Connection

COUNT_LABELS = {
    "orders": "commandes",
    "signatures": "signatures",
    "photos": "photos de personnes",
    "events": "entrées d'historique",
    "messages": "messages à la plateforme",
    "notifications": "notifications reçues",
}


def describe(counts: dict[str, int]) -> str:
    return ", ".join(f"{counts.get(name, 0)} {label}" for name, label in COUNT_LABELS.items())


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(ContractErasure)
class ContractErasureAdmin(ReadOnlyAdmin):
    list_display = ("contract", "at", "actor", "summary")
    list_select_related = ("contract", "actor")
    change_list_template = "admin/portal/contracterasure/change_list.html"

    @admin.display(description="effacé")
    def summary(self, obj: ContractErasure) -> str:
        return describe(obj.counts)

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        """Above the erasures made, the contracts not erased yet that have an
        end: when theirs comes and what it would erase today (a dry run)."""
        upcoming = [
            {
                "contract": contract,
                "date": erasure.erasure_date(contract),
                "what": describe(erasure.erase_contract(contract, dry_run=True).as_dict()),
            }
            for contract in Contract.objects.filter(ends_on__isnull=False, erasures__isnull=True)
            .select_related("client")
            .order_by("ends_on", "pk")
        ]
        return super().changelist_view(request, {"upcoming": upcoming, **(extra_context or {})})


@admin.register(ReportPhoto)
class ReportPhotoAdmin(admin.ModelAdmin):
    """Where the office flags the photos that show a person: they go with the
    occupants' personal data at the end of the contract (orders.erasure)."""

    list_display = ("__str__", "report", "shows_person")
    list_editable = ("shows_person",)
    list_filter = ("shows_person", "kind")
    list_select_related = ("report__order",)
    search_fields = ("report__order__reference",)
    fields = ("report", "kind", "position", "image", "shows_person")
    readonly_fields = ("report", "kind", "position", "image")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(ReversibilityExport)
class ReversibilityExportAdmin(ReadOnlyAdmin):
    """The list; exports are asked for, followed and downloaded on /bureau/exports/."""

    list_display = ("__str__", "status", "requested_by", "finished_at", "page")
    list_select_related = ("client", "contract", "requested_by")

    @admin.display(description="")
    def page(self, obj: ReversibilityExport) -> str:
        return format_html('<a href="{}">Suivre ou télécharger</a>', reverse("orders:export_detail", args=[obj.pk]))


@admin.register(ContactAccess)
class ContactAccessAdmin(ReadOnlyAdmin):
    list_display = ("at", "user", "where", "order_id", "orders", "detail")
    list_filter = ("where", "user")
    search_fields = ("user__username", "user__last_name", "detail")
    date_hierarchy = "at"
    list_select_related = ("user",)

    def get_urls(self) -> list:
        register = self.admin_site.admin_view(self.register_view)
        return [path("registre/", register, name="processing_register"), *super().get_urls()]

    def register_view(self, request: HttpRequest) -> HttpResponse:
        """The processing register of seed 004 §5.2.9, from the data as it is."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        context = {**self.admin_site.each_context(request), "title": "Registre des activités de traitement"}
        return TemplateResponse(request, "admin/portal/processing_register.html", {**context, **register_data()})


def _security_measures() -> list[str]:
    """What the settings in force actually do, in the register's words."""
    storage = settings.STORAGES["default"]["BACKEND"]
    measures = [
        "Accès chiffré (HTTPS)"
        + (f", HSTS {settings.SECURE_HSTS_SECONDS // 86400} jours" if settings.SECURE_HSTS_SECONDS else ""),
        "Comptes nominatifs par rôle (technicien, conducteur de travaux, bureau) ; "
        "chaque technicien ne voit que ses commandes",
        f"Blocage de la connexion après {settings.AXES_FAILURE_LIMIT} échecs ; mots de passe hachés (Argon2/PBKDF2)",
        "Secrets des plateformes chiffrés en base (Fernet) ; politique de sécurité du contenu stricte (CSP)",
        "Photos réduites et débarrassées de leurs métadonnées (dont la position GPS) dès leur dépôt",
        f"Journal des consultations des coordonnées des occupants, conservé {settings.ACCESS_LOG_RETENTION_DAYS} jours",
        "Effacement des données personnelles des occupants à la fin de chaque marché, après son délai de conservation",
        "Sauvegarde quotidienne de la base et des fichiers, restauration vérifiée (manage.py backup / restore)",
        "Fichiers stockés "
        + (
            "sur un stockage objet S3" if "S3" in storage else "sur le serveur, servis seulement après contrôle d'accès"
        ),
    ]
    return measures


def register_data() -> dict[str, Any]:
    with_occupant = Q(contracts__orders__occupant_name__gt="") | Q(contracts__orders__occupant_mobile__gt="")
    clients = Client.objects.annotate(
        contract_count=Count("contracts", distinct=True),
        occupant_orders=Count("contracts__orders", filter=with_occupant, distinct=True),
    ).order_by("name")
    return {
        "company": Company.objects.first(),
        "dpo": {"name": settings.DPO_NAME, "email": settings.DPO_EMAIL, "phone": settings.DPO_PHONE},
        "clients": clients,
        "contracts": Contract.objects.select_related("client").order_by("client__name", "reference"),
        "connections": Connection.objects.select_related("client").order_by("client__name"),
        "orders_total": Order.objects.count(),
        "email_host": next(iter(settings.MAILERS.values()), {}).get("OPTIONS", {}).get("host", ""),
        "s3_region": settings.STORAGES["default"].get("OPTIONS", {}).get("region_name") or "",
        "measures": _security_measures(),
        "retention_days": settings.ACCESS_LOG_RETENTION_DAYS,
    }
