"""`python manage.py seed_demo`: a believable contractor to try the portal with.

It creates, once, in one transaction: the contractor (Multitech Lorraine SARL),
its people (three technicians, a site supervisor, office staff), two clients
with their billing accounts, three contracts with their service codes and price
schedules, the clients' property (sites, buildings, dwellings) and 40 orders
spread over every state, received over the last six weeks (two programmed
renovations on the heating contract longer ago: they are late, and weigh enough
for the supervisor's overview to show penalties past the 1,000 EUR exemption).
The electrical contract has its own penalty terms (its CCAP: 50 EUR per day,
no cap, no exemption); of the works finished lately, one is adjourned by the buyer, one
admitted, one admitted tacitly (no decision within the 7 days of verification).
The first client also gets its platform connection (`sandbox_connect_demo`
sets it up afterwards) with two changes its platform received more than 15
minutes late this month: the relay's breaches, and the data-sharing penalty.

The tables are in `orders.demo.data` and `orders.demo.contracts`; `orders.demo.world`
makes the company, people, clients and contracts; `orders.demo.story` plans
every order's story (pure Python, from a fixed random seed and today's date),
then replays it through the order services (`orders.services`,
`orders.receiving`, `orders.planning`), action by action, each dated with
`at=`, so that every order has the history it would have had.

Run again, it creates nothing and says so. Either way it ends with how to sign
in as each role; `--print-logins` prints only that.
"""

from __future__ import annotations

from collections import Counter

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from orders.demo import data, story, world
from orders.states import STATE_LABELS, WORK_STATES
from portal.models import Client, Company, Role, User


class Command(BaseCommand):
    help = "Crée une fois des données de démonstration crédibles, puis affiche comment se connecter."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--print-logins",
            action="store_true",
            help="Affiche seulement les identifiants de connexion, sans rien créer.",
        )

    def handle(self, *args, print_logins: bool = False, **options) -> None:
        if not print_logins:
            if self._already_there():
                self.stdout.write("Données de démonstration déjà présentes : rien n'a été créé.")
            else:
                with transaction.atomic():
                    summary = self._create()
                self.stdout.write(self.style.SUCCESS("Données de démonstration créées"))
                for line in summary:
                    self.stdout.write(f"  {line}")
                self.stdout.write("")
        self._print_logins()

    def _already_there(self) -> bool:
        return (
            Company.objects.filter(siret=data.COMPANY["siret"]).exists()
            or User.objects.filter(username__in=[user[0] for user in data.USERS]).exists()
            or Client.objects.filter(name__in=[client["name"] for client in data.CLIENTS.values()]).exists()
        )

    def _print_logins(self) -> None:
        self.stdout.write(self.style.SUCCESS("Connexion à la démonstration"))
        self.stdout.write(f"Portail : {settings.SITE_URL}{reverse('login')}")
        for label, username in data.LOGINS:
            self.stdout.write(f"{label} : {username} / {data.PASSWORD}")
        others = ", ".join(
            username for username, role, *_ in data.USERS if role == Role.TECHNICIAN and username != data.TECHNICIAN
        )
        self.stdout.write(f"Autres techniciens : {others} (même mot de passe)")

    def _create(self) -> list[str]:
        now = timezone.now()
        made = world.create_world()
        orders = [story.replay(plan, made) for plan in story.plan_orders(now)]
        breaches = world.record_late_deliveries(now)
        decisions = world.record_admissions(now)
        states = Counter(order.state for order in orders)
        late = sum(1 for order in orders if order.state in WORK_STATES and order.due_at and order.due_at < now)
        technician, today = made.users[data.TECHNICIAN], timezone.localdate(now)
        today_appointments = sum(
            1
            for order in orders
            if order.technician_id == technician.pk
            and order.appointment_at
            and timezone.localdate(order.appointment_at) == today
        )
        return [
            f"Entreprise : {made.company.name} (SIRET {made.company.siret})",
            f"{len(made.users)} utilisateurs, {Client.objects.count()} clients, {len(made.contracts)} marchés, "
            f"{len(made.service_codes)} codes prestation, {len(made.price_items)} prix au bordereau, "
            f"{len(made.assets)} éléments de patrimoine",
            f"{len(orders)} commandes : "
            + ", ".join(f"{states[state]} « {label.lower()} »" for state, label in STATE_LABELS.items()),
            f"{late} commandes en retard (travaux non terminés à l'échéance), {today_appointments} rendez-vous "
            f"aujourd'hui pour {technician.get_full_name()}",
            f"{len(breaches)} transmissions à la plateforme au-delà de 15 minutes (dépassements enregistrés par le "
            "relais)",
            f"{len(decisions)} décisions de l'acheteur sur l'admission des travaux terminés (ajournement, admission)",
        ]
