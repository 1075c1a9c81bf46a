"""The admin's pages about personal data (seed 004 §5): the erasures at the
end of contracts, with what the next ones would erase (a dry run), and the
log of who saw occupants' contact details. Imported by orders/admin.py."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse

from orders import erasure
from portal.models import ContactAccess, Contract, ContractErasure

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


@admin.register(ContactAccess)
class ContactAccessAdmin(ReadOnlyAdmin):
    list_display = ("at", "user", "where", "order_id", "orders", "detail")
    list_filter = ("where", "user")
    search_fields = ("user__username", "user__last_name", "detail")
    date_hierarchy = "at"
    list_select_related = ("user",)
