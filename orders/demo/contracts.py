"""The demo's three contracts, as tables: service codes (with their
intervention and completion delays in hours), price schedules, and the
problems each contract receives (what the tenant reports and the lines it
takes), from which `orders.demo.story` draws the orders."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from orders.models import CriticalLevel, WorkType
from portal.models import AssetKind


@dataclass(frozen=True)
class Problem:
    """A kind of order a contract receives: what the tenant reports, and the
    price schedule lines it usually takes, with the quantities to pick from."""

    service_code: str
    description: str
    lines: tuple[tuple[str, tuple[str, ...]], ...]
    critical: int = CriticalLevel.URGENT
    on: str = AssetKind.DWELLING  # or a building, for common parts, or equipment
    long: bool = False  # works over more than a day, planned as a period
    work_type: str = WorkType.CORRECTIVE
    # A programmed renovation rather than a repair: worth tens of thousands of
    # euros, drawn only by the scenario whose pace bears its name, and with the
    # execution period the order itself sets (in days), not the service code's.
    major: str = ""
    delay_days: int | None = None


def _p(service_code: str, description: str, *lines: str | tuple[str, tuple[str, ...]], **options: Any) -> Problem:
    return Problem(
        service_code,
        description,
        tuple(line if isinstance(line, tuple) else (line, ("1",)) for line in lines),
        **options,
    )


CONTRACTS = [
    {
        "client": "oph",
        "reference": "MULTITECH-2024-07",
        "label": "Maintenance multitechnique des logements et des parties communes",
        "starts_on": date(2024, 7, 1),
        "ends_on": date(2028, 6, 30),
        "default_delay_days": 15,
        "order_prefix": "OPH57_",
        "weight": 45,
        "service_codes": [
            ("PLB-FUITE", "Recherche et réparation de fuite", 24, 72),
            ("PLB-ENGORG", "Débouchage de canalisation", 24, 72),
            ("CHF-PANNE", "Dépannage chauffage et eau chaude", 8, 48),
            ("VMC-DEPAN", "Dépannage de ventilation mécanique", 72, 240),
            ("SERR-DEPAN", "Ouverture de porte et dépannage de serrurerie", 4, 24),
            ("ELEC-PANNE", "Dépannage électrique", 4, 48),
        ],
        "price_items": [
            ("PLB-010", "Recherche de fuite, déplacement compris", "forfait", "85.00", "10.00"),
            ("PLB-020", "Remplacement de siphon d'évier ou de lavabo", "u", "48.50", "10.00"),
            ("PLB-030", "Débouchage de canalisation au furet électrique", "forfait", "120.00", "10.00"),
            ("PLB-040", "Remplacement de mécanisme de chasse d'eau", "u", "68.00", "10.00"),
            (
                "CHF-010",
                "Dépannage de chaudière gaz individuelle, diagnostic et remise en service",
                "forfait",
                "95.00",
                "10.00",
            ),
            ("CHF-020", "Remplacement de chauffe-eau électrique 200 L", "u", "890.00", "10.00"),
            ("CHF-030", "Remplacement de robinet thermostatique de radiateur", "u", "62.00", "5.50"),
            ("ELE-010", "Recherche de panne électrique", "forfait", "75.00", "10.00"),
            ("VMC-010", "Remplacement de bouche d'extraction VMC hygroréglable", "u", "56.00", "10.00"),
            ("VMC-020", "Remplacement de moteur de caisson de VMC collective", "u", "640.00", "10.00"),
            ("SER-010", "Remplacement de cylindre de serrure européen, 3 clés", "u", "78.00", "10.00"),
            ("MOE-010", "Main-d'œuvre, heure de technicien", "h", "52.00", "10.00"),
        ],
        "problems": [
            _p(
                "PLB-FUITE",
                "Fuite sous l'évier de la cuisine, dégât des eaux chez le voisin du dessous",
                "PLB-010",
                "PLB-020",
                critical=CriticalLevel.STRATEGIC,
            ),
            _p(
                "PLB-FUITE",
                "Fuite au pied du WC, le sol de la salle de bains est mouillé en permanence",
                "PLB-010",
                "PLB-040",
                ("MOE-010", ("1", "1.5")),
            ),
            _p("PLB-ENGORG", "Évacuation de la baignoire bouchée, l'eau ne s'écoule plus", "PLB-030"),
            _p(
                "PLB-ENGORG",
                "Colonne d'eaux usées engorgée, refoulement dans les logements du rez-de-chaussée",
                "PLB-030",
                ("MOE-010", ("2", "3")),
                critical=CriticalLevel.PRIORITY,
                on=AssetKind.BUILDING,
            ),
            _p(
                "CHF-PANNE",
                "Chaudière en sécurité, plus de chauffage ni d'eau chaude, enfant en bas âge dans le logement",
                "CHF-010",
                "MOE-010",
                critical=CriticalLevel.PRIORITY,
            ),
            _p(
                "CHF-PANNE",
                "Chauffe-eau électrique qui ne chauffe plus, le disjoncteur saute à chaque mise en route",
                "CHF-010",
                "CHF-020",
                critical=CriticalLevel.STRATEGIC,
            ),
            _p(
                "CHF-PANNE",
                "Radiateurs de la chambre froids, robinets thermostatiques grippés",
                ("CHF-030", ("2", "3")),
                "MOE-010",
                critical=CriticalLevel.NOT_URGENT,
            ),
            _p(
                "VMC-DEPAN",
                "VMC très bruyante dans la cage d'escalier, plusieurs locataires se plaignent",
                "VMC-020",
                ("MOE-010", ("2",)),
                critical=CriticalLevel.NOT_URGENT,
                on=AssetKind.BUILDING,
            ),
            _p(
                "VMC-DEPAN",
                "Bouche d'extraction de la salle de bains arrachée, moisissures au plafond",
                ("VMC-010", ("1", "2")),
                critical=CriticalLevel.NOT_URGENT,
            ),
            _p(
                "SERR-DEPAN",
                "Porte palière bloquée, clé cassée dans le cylindre",
                "SER-010",
                "MOE-010",
                critical=CriticalLevel.PRIORITY,
            ),
            _p(
                "ELEC-PANNE",
                "Le disjoncteur général saute dès que le four est branché",
                "ELE-010",
                "MOE-010",
                critical=CriticalLevel.STRATEGIC,
            ),
        ],
    },
    {
        "client": "flg",
        "reference": "PLOMB-CHAUF-2025-02",
        "label": "Plomberie, chauffage et production d'eau chaude sanitaire",
        "starts_on": date(2025, 2, 1),
        "ends_on": date(2027, 1, 31),
        "default_delay_days": 10,
        "order_prefix": "FLG54_",
        "weight": 30,
        "service_codes": [
            ("CHF-PANNE", "Dépannage chauffage", 8, 48),
            ("CHF-ENTRET", "Entretien annuel de chaudière", 336, 720),
            ("ECS-PANNE", "Panne d'eau chaude sanitaire", 8, 48),
            ("PLB-FUITE", "Recherche et réparation de fuite", 24, 72),
            ("PLB-ROBIN", "Remplacement de robinetterie", 72, 168),
            ("CHF-TRAVAUX", "Remplacement et remise en état d'installation de chauffage", 120, 504),
        ],
        "price_items": [
            ("DEP-010", "Déplacement et diagnostic", "forfait", "65.00", "10.00"),
            ("CHF-010", "Entretien annuel de chaudière gaz murale avec attestation", "u", "89.00", "10.00"),
            ("CHF-020", "Remplacement d'échangeur de chaudière", "u", "420.00", "10.00"),
            ("CHF-030", "Remplacement de chaudière gaz à condensation 24 kW", "u", "3150.00", "5.50"),
            ("CHF-040", "Remplacement de robinet thermostatique de radiateur", "u", "64.00", "5.50"),
            ("CHF-050", "Désembouage de circuit de chauffage", "forfait", "380.00", "10.00"),
            (
                "CHF-060",
                "Rénovation de chaufferie collective : 2 chaudières gaz à condensation 150 kW, dépose, "
                "raccordements et mise en service",
                "forfait",
                "68900.00",
                "5.50",
            ),
            ("ECS-010", "Remplacement de chauffe-eau électrique 150 L vertical", "u", "760.00", "10.00"),
            ("ECS-020", "Remplacement de groupe de sécurité", "u", "58.00", "10.00"),
            ("PLB-010", "Remplacement de mitigeur d'évier", "u", "118.00", "10.00"),
            ("PLB-020", "Reprise de fuite sur canalisation cuivre (jusqu'à 1 ml)", "u", "96.00", "10.00"),
            ("MOE-010", "Main-d'œuvre, heure de plombier-chauffagiste", "h", "49.00", "10.00"),
        ],
        "problems": [
            _p(
                "CHF-PANNE",
                "Chaudière en panne, code erreur F28 affiché, plus de chauffage",
                "DEP-010",
                "MOE-010",
                critical=CriticalLevel.STRATEGIC,
            ),
            _p(
                "CHF-ENTRET",
                "Entretien annuel de la chaudière gaz, attestation à remettre au locataire",
                "CHF-010",
                critical=CriticalLevel.NOT_URGENT,
                work_type=WorkType.PREVENTIVE,
            ),
            _p(
                "CHF-TRAVAUX",
                "Radiateurs froids dans les chambres, circuit de chauffage embouché",
                "CHF-050",
                ("CHF-040", ("3", "4")),
                long=True,
            ),
            _p("ECS-PANNE", "Plus d'eau chaude, le groupe de sécurité goutte en permanence", "DEP-010", "ECS-020"),
            _p(
                "ECS-PANNE",
                "Chauffe-eau de 150 L percé, fuite au sol dans le cellier",
                "ECS-010",
                "ECS-020",
                "MOE-010",
                critical=CriticalLevel.STRATEGIC,
            ),
            _p(
                "PLB-FUITE",
                "Fuite sur la canalisation encastrée derrière la baignoire, tache au plafond du voisin",
                "DEP-010",
                "PLB-020",
                ("MOE-010", ("2",)),
                critical=CriticalLevel.STRATEGIC,
            ),
            _p(
                "PLB-ROBIN",
                "Mitigeur de l'évier qui fuit au niveau du bec, remplacement demandé",
                "PLB-010",
                critical=CriticalLevel.NOT_URGENT,
            ),
            _p(
                "CHF-TRAVAUX",
                "Chaudière de plus de 20 ans hors d'usage, remplacement par une chaudière à condensation",
                "CHF-030",
                ("MOE-010", ("3",)),
                long=True,
            ),
            _p(
                "CHF-PANNE",
                "Échangeur de la chaudière percé, le locataire n'a plus de chauffage",
                "DEP-010",
                "CHF-020",
                critical=CriticalLevel.STRATEGIC,
            ),
            _p(
                "CHF-TRAVAUX",
                "Chaufferie collective hors d'usage : remplacement des deux générateurs par des chaudières à "
                "condensation, à terminer avant la saison de chauffe",
                "CHF-060",
                ("MOE-010", ("24",)),
                critical=CriticalLevel.STRATEGIC,
                on=AssetKind.EQUIPMENT,
                long=True,
                major="chaufferie",
                delay_days=60,
            ),
            _p(
                "CHF-TRAVAUX",
                "Programme du bailleur : remplacement des chaudières individuelles de plus de 25 ans du bâtiment",
                ("CHF-030", ("6",)),
                ("MOE-010", ("12",)),
                critical=CriticalLevel.NOT_URGENT,
                on=AssetKind.BUILDING,
                long=True,
                major="chaudieres",
            ),
        ],
    },
    {
        "client": "oph",
        "reference": "ELEC-2025-11",
        "label": "Mise en sécurité et dépannage électrique",
        "starts_on": date(2025, 11, 1),
        "ends_on": date(2029, 10, 31),
        "default_delay_days": 20,
        # Its CCAP departs from the CCAG-MI (as the 004 seed does): a fixed amount
        # per day of delay instead of V × R / 3000, no cap and no 1,000 EUR exemption.
        "penalty_terms": {
            "late_penalty_divisor": None,
            "late_penalty_per_day": Decimal("50.00"),
            "late_penalty_cap_percent": None,
            "late_penalty_exemption": None,
        },
        "order_prefix": "OPH57_",
        "weight": 25,
        "service_codes": [
            ("ELEC-PANNE", "Dépannage électrique", 4, 24),
            ("ELEC-TABLEAU", "Mise en sécurité de tableau électrique", 72, 336),
            ("ELEC-APPAR", "Remplacement d'appareillage", 72, 168),
            ("ELEC-COMMUNS", "Éclairage des parties communes", 24, 120),
            ("ELEC-DIAG", "Diagnostic électrique avant relocation", 168, 480),
        ],
        "price_items": [
            ("DEP-010", "Déplacement et recherche de panne", "forfait", "70.00", "10.00"),
            (
                "TAB-010",
                "Remplacement de tableau électrique 2 rangées, mise en conformité NF C 15-100",
                "u",
                "980.00",
                "10.00",
            ),
            ("TAB-020", "Remplacement d'interrupteur différentiel 40 A 30 mA type A", "u", "135.00", "10.00"),
            ("TAB-030", "Remplacement de disjoncteur divisionnaire", "u", "39.00", "10.00"),
            ("APP-010", "Remplacement de prise de courant 16 A", "u", "28.00", "10.00"),
            ("APP-020", "Remplacement d'interrupteur simple allumage", "u", "24.00", "10.00"),
            ("LUM-010", "Remplacement de hublot LED à détection de présence", "u", "86.00", "10.00"),
            ("DIA-010", "Diagnostic de l'installation intérieure d'électricité", "u", "145.00", "20.00"),
            ("DAF-010", "Fourniture seule de détecteur de fumée (DAAF)", "u", "19.00", "20.00"),
            ("MOE-010", "Main-d'œuvre, heure d'électricien", "h", "54.00", "10.00"),
        ],
        "problems": [
            _p(
                "ELEC-PANNE",
                "Plus de courant dans la chambre et le séjour, l'interrupteur différentiel déclenche sans arrêt",
                "DEP-010",
                "TAB-020",
                critical=CriticalLevel.STRATEGIC,
            ),
            _p(
                "ELEC-TABLEAU",
                "Tableau électrique vétuste à fusibles, mise en sécurité demandée après diagnostic",
                "TAB-010",
                ("MOE-010", ("4", "6")),
                long=True,
            ),
            _p(
                "ELEC-APPAR",
                "Prise de la cuisine fondue derrière le réfrigérateur, traces de brûlé",
                "DEP-010",
                ("APP-010", ("1", "2")),
                critical=CriticalLevel.STRATEGIC,
            ),
            _p(
                "ELEC-APPAR",
                "Interrupteurs du couloir et de la chambre hors service",
                ("APP-020", ("2",)),
                "MOE-010",
                critical=CriticalLevel.NOT_URGENT,
            ),
            _p(
                "ELEC-COMMUNS",
                "Éclairage de la cage d'escalier en panne du 2e au 4e étage",
                ("LUM-010", ("3", "4")),
                ("MOE-010", ("1.5",)),
                on=AssetKind.BUILDING,
            ),
            _p(
                "ELEC-DIAG",
                "Diagnostic électrique avant relocation du logement, détecteur de fumée à remplacer",
                "DIA-010",
                "DAF-010",
                critical=CriticalLevel.NOT_URGENT,
                work_type=WorkType.PREVENTIVE,
            ),
            _p(
                "ELEC-PANNE",
                "Odeur de brûlé au tableau, un disjoncteur divisionnaire chauffe",
                "DEP-010",
                ("TAB-030", ("1", "2")),
                critical=CriticalLevel.PRIORITY,
            ),
        ],
    },
]
