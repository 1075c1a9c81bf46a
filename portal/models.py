"""The shared core: the contractor, its people, its clients and their contracts."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q


def validate_siret(value: str) -> None:
    """A SIRET is 14 digits passing the Luhn check (La Poste's SIRETs excepted)."""
    digits = value.replace(" ", "")
    if not digits.isdigit() or len(digits) != 14:
        raise ValidationError("Un SIRET compte 14 chiffres.")
    if digits.startswith("356000000"):  # La Poste: sum of digits divisible by 5
        if sum(int(d) for d in digits) % 5:
            raise ValidationError("Ce SIRET n'est pas valide.")
        return
    total = 0
    for index, char in enumerate(reversed(digits)):
        number = int(char) * (2 if index % 2 else 1)
        total += number - 9 if number > 9 else number
    if total % 10:
        raise ValidationError("Ce SIRET n'est pas valide (clé de contrôle incorrecte).")


phone_validator = RegexValidator(
    r"^\+?[0-9 .()-]{10,20}$", "Saisissez un numéro de téléphone valide, par exemple 06 12 34 56 78."
)
mobile_validator = RegexValidator(
    r"^(?:(?:\+|00)33 ?[67]|0[67])(?:[ .-]?[0-9]{2}){4}$",
    "Saisissez un numéro de mobile français, par exemple 06 12 34 56 78.",
)


class Address(models.Model):
    address = models.CharField("adresse", max_length=200, blank=True)
    address_complement = models.CharField("complément d'adresse", max_length=200, blank=True)
    postcode = models.CharField("code postal", max_length=10, blank=True)
    city = models.CharField("ville", max_length=100, blank=True)

    class Meta:
        abstract = True

    @property
    def full_address(self) -> str:
        town = " ".join(part for part in (self.postcode, self.city) if part)
        return ", ".join(part for part in (self.address, self.address_complement, town) if part)


class Company(Address):
    """The contractor (the *titulaire*) that runs this portal."""

    name = models.CharField("raison sociale", max_length=200)
    siret = models.CharField("SIRET", max_length=14, validators=[validate_siret])
    vat_number = models.CharField("n° de TVA intracommunautaire", max_length=20, blank=True)
    phone = models.CharField("téléphone", max_length=20, blank=True, validators=[phone_validator])
    email = models.EmailField("e-mail", blank=True)
    logo = models.ImageField("logo", upload_to="company/", blank=True)

    class Meta:
        verbose_name = "entreprise"
        verbose_name_plural = "entreprise"

    def __str__(self) -> str:
        return self.name


class Role(models.TextChoices):
    TECHNICIAN = "technician", "Technicien"
    SUPERVISOR = "supervisor", "Conducteur de travaux"
    OFFICE = "office", "Bureau"


class User(AbstractUser):
    role = models.CharField("rôle", max_length=20, choices=Role, default=Role.TECHNICIAN)
    mobile = models.CharField("mobile", max_length=20, blank=True, validators=[mobile_validator])

    class Meta:
        verbose_name = "utilisateur"
        verbose_name_plural = "utilisateurs"
        ordering = ["last_name", "first_name"]
        constraints = [
            models.CheckConstraint(condition=Q(role__in=Role.values), name="%(app_label)s_%(class)s_role_valid"),
        ]

    def __str__(self) -> str:
        return self.get_full_name() or self.username

    @property
    def is_technician(self) -> bool:
        return self.role == Role.TECHNICIAN


class Client(Address):
    """A property manager or social landlord (*gestionnaire immobilier*, *bailleur*)."""

    name = models.CharField("nom", max_length=200, unique=True)
    siret = models.CharField("SIRET", max_length=14, blank=True, validators=[validate_siret])
    email = models.EmailField("e-mail", blank=True)
    phone = models.CharField("téléphone", max_length=20, blank=True, validators=[phone_validator])

    class Meta:
        verbose_name = "client"
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class BillingAccount(Address):
    """Where the client wants invoices sent (sent by the manager, never edited there)."""

    client = models.ForeignKey(Client, models.PROTECT, related_name="billing_accounts", verbose_name="client")
    reference = models.CharField("référence", max_length=100)
    label = models.CharField("libellé", max_length=200)
    siret = models.CharField("SIRET", max_length=14, blank=True, validators=[validate_siret])
    service_code = models.CharField(
        "code service", max_length=100, blank=True, help_text="Le code du service payeur (Chorus Pro)."
    )
    email = models.EmailField("e-mail", blank=True)

    class Meta:
        verbose_name = "compte de facturation"
        verbose_name_plural = "comptes de facturation"
        ordering = ["client__name", "label"]
        constraints = [
            models.UniqueConstraint(fields=["client", "reference"], name="%(app_label)s_%(class)s_unique_reference"),
        ]

    def __str__(self) -> str:
        return f"{self.label} ({self.reference})"


class SharingPenaltyCounting(models.TextChoices):
    """How the platform annex's "150 euros par jour" counts (seed 000 §3.1):
    the values of `orders.penalties.SharingCounting`."""

    PER_CHANGE = "per_change", "Par modification transmise en retard (le plus strict)"
    PER_DAY = "per_day", "Par jour calendaire de non-conformité"


class Contract(models.Model):
    """A framework contract (*marché à bons de commande*) with one client, with
    its penalty terms: the CCAG-MI's unless its CCAP departs from them."""

    client = models.ForeignKey(Client, models.PROTECT, related_name="contracts", verbose_name="client")
    reference = models.CharField("référence du marché", max_length=100, help_text="La référence de la plateforme.")
    label = models.CharField("libellé", max_length=200)
    starts_on = models.DateField("début")
    ends_on = models.DateField("fin", null=True, blank=True)
    default_delay_days = models.PositiveSmallIntegerField(
        "délai d'exécution par défaut (jours)",
        default=15,
        help_text="Appliqué quand ni la commande ni le code prestation n'en fixent un.",
    )
    billing_account = models.ForeignKey(
        BillingAccount,
        models.PROTECT,
        null=True,
        blank=True,
        related_name="contracts",
        verbose_name="compte de facturation",
    )
    active = models.BooleanField("actif", default=True)
    buyer_representative = models.CharField(
        "représentant de l'acheteur",
        max_length=200,
        blank=True,
        help_text="La personne qui représente l'acheteur pour l'exécution du marché (CCAG-MI art. 3.3) : "
        "les courriers lui sont adressés.",
    )
    # Late penalties (CCAG-MI art. 15, unless the CCAP says otherwise).
    late_penalty_divisor = models.PositiveIntegerField(
        "diviseur des pénalités de retard",
        null=True,
        blank=True,
        default=3000,
        help_text="P = V × R / diviseur (CCAG-MI art. 15.1 : 3000). Vide si le CCAP fixe un montant par jour.",
    )
    late_penalty_per_day = models.DecimalField(
        "pénalité de retard par jour (€)",
        max_digits=10,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="Montant fixe par jour de retard, quand le CCAP en fixe un (à la place de la formule).",
    )
    late_penalty_cap_percent = models.DecimalField(
        "plafond des pénalités de retard (% de la commande)",
        max_digits=5,
        decimal_places=2,
        null=True,
        blank=True,
        default=Decimal(10),
        help_text="CCAG-MI art. 15.2 : 10 %. Vide : pas de plafond.",
    )
    late_penalty_exemption = models.DecimalField(
        "seuil d'exonération des pénalités de retard (€)",
        max_digits=10,
        decimal_places=2,
        null=True,
        blank=True,
        default=Decimal(1000),
        help_text="CCAG-MI art. 15.3 : 1 000 € pour l'ensemble du marché. Vide : pas d'exonération.",
    )
    # The data-sharing penalty (platform annex §3.1).
    sharing_penalty_per_day = models.DecimalField(
        "pénalité de partage des données par jour (€)",
        max_digits=10,
        decimal_places=2,
        default=Decimal(150),
        validators=[MinValueValidator(Decimal(0))],
    )
    sharing_penalty_counting = models.CharField(
        "décompte des jours de retard de partage",
        max_length=20,
        choices=SharingPenaltyCounting,
        default=SharingPenaltyCounting.PER_CHANGE,
        help_text="« 150 euros par jour » : par modification en retard, ou par jour calendaire de non-conformité.",
    )
    # Admission (CCAG-MI art. 33.1): the buyer's time to verify and decide.
    verification_days = models.PositiveSmallIntegerField(
        "délai de vérification (jours)",
        default=7,
        validators=[MinValueValidator(1)],
        help_text="À compter de la fin des travaux : 7 jours (CCAG-MI art. 33.1), 30 avec une épreuve technique.",
    )
    retention_days = models.PositiveIntegerField(
        "conservation des données personnelles (jours)",
        default=0,
        help_text="Après la fin du marché, délai avant l'effacement des données personnelles des occupants.",
    )

    class Meta:
        verbose_name = "marché"
        ordering = ["client__name", "reference"]
        constraints = [
            models.UniqueConstraint(fields=["client", "reference"], name="%(app_label)s_%(class)s_unique_reference"),
            models.CheckConstraint(
                condition=Q(ends_on__isnull=True) | Q(ends_on__gte=models.F("starts_on")),
                name="%(app_label)s_%(class)s_ends_after_start",
            ),
            # Either the formula's divisor or a fixed amount per day, never both, never neither.
            models.CheckConstraint(
                condition=Q(late_penalty_divisor__isnull=False, late_penalty_divisor__gt=0, late_penalty_per_day=None)
                | Q(late_penalty_divisor=None, late_penalty_per_day__isnull=False, late_penalty_per_day__gte=0),
                name="%(app_label)s_%(class)s_late_penalty_formula",
                violation_error_message="Pénalités de retard : indiquez soit le diviseur de la formule (3000 au "
                "CCAG-MI), soit un montant fixe par jour, mais pas les deux.",
            ),
            models.CheckConstraint(
                condition=Q(sharing_penalty_counting__in=SharingPenaltyCounting.values),
                name="%(app_label)s_%(class)s_sharing_counting_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.reference} – {self.label}"


class AssetKind(models.TextChoices):
    SITE = "site", "Groupe / résidence"
    BUILDING = "building", "Bâtiment"
    ENTRANCE = "entrance", "Entrée / cage d'escalier"
    DWELLING = "dwelling", "Logement"
    COMMON_AREA = "common_area", "Parties communes"
    EQUIPMENT = "equipment", "Équipement"


class Asset(Address):
    """An element of the client's property (*patrimoine*): building, dwelling, equipment."""

    client = models.ForeignKey(Client, models.PROTECT, related_name="assets", verbose_name="client")
    reference = models.CharField("référence", max_length=100)
    label = models.CharField("libellé", max_length=200)
    kind = models.CharField("nature", max_length=20, choices=AssetKind, default=AssetKind.DWELLING)
    parent = models.ForeignKey(
        "self", models.PROTECT, null=True, blank=True, related_name="children", verbose_name="parent"
    )

    class Meta:
        verbose_name = "élément de patrimoine"
        verbose_name_plural = "patrimoine"
        ordering = ["client__name", "reference"]
        constraints = [
            models.UniqueConstraint(fields=["client", "reference"], name="%(app_label)s_%(class)s_unique_reference"),
            models.CheckConstraint(condition=Q(kind__in=AssetKind.values), name="%(app_label)s_%(class)s_kind_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.reference} – {self.label}"


class ServiceCode(models.Model):
    """A service (*prestation*) of a contract's catalogue, with its SLA delays."""

    contract = models.ForeignKey(Contract, models.CASCADE, related_name="service_codes", verbose_name="marché")
    code = models.CharField("code", max_length=50)
    label = models.CharField("libellé", max_length=200)
    intervention_delay_hours = models.PositiveIntegerField("délai d'intervention (heures)", null=True, blank=True)
    completion_delay_hours = models.PositiveIntegerField(
        "délai de remise en état (heures)",
        null=True,
        blank=True,
        help_text="Fixe l'échéance des commandes de ce code.",
    )
    visit_minutes = models.PositiveSmallIntegerField(
        "durée d'une visite (minutes)",
        default=60,
        validators=[MinValueValidator(5), MaxValueValidator(24 * 60)],
        help_text="Le temps qu'un rendez-vous de ce code occupe son technicien dans le planning.",
    )

    class Meta:
        verbose_name = "code prestation"
        verbose_name_plural = "codes prestation"
        ordering = ["contract", "code"]
        constraints = [
            models.UniqueConstraint(fields=["contract", "code"], name="%(app_label)s_%(class)s_unique_code"),
        ]

    def __str__(self) -> str:
        return f"{self.code} – {self.label}"


# Renovation of dwellings over two years old is at 10 %, energy work at 5.5 %.
VAT_RATES = [
    (Decimal("20.00"), "20 %"),
    (Decimal("10.00"), "10 %"),
    (Decimal("5.50"), "5,5 %"),
    (Decimal("0.00"), "0 %"),
]


class PriceItem(models.Model):
    """A line of a contract's price schedule (*bordereau de prix unitaires*, BPU)."""

    contract = models.ForeignKey(Contract, models.CASCADE, related_name="price_items", verbose_name="marché")
    code = models.CharField("code", max_length=50)
    label = models.CharField("libellé", max_length=300)
    unit = models.CharField("unité", max_length=20, default="u")
    unit_price = models.DecimalField(
        "prix unitaire HT (€)", max_digits=12, decimal_places=2, validators=[MinValueValidator(Decimal(0))]
    )
    vat_rate = models.DecimalField(
        "taux de TVA (%)", max_digits=5, decimal_places=2, choices=VAT_RATES, default=Decimal("10.00")
    )

    class Meta:
        verbose_name = "prix du bordereau"
        verbose_name_plural = "bordereau de prix"
        ordering = ["contract", "code"]
        constraints = [
            models.UniqueConstraint(fields=["contract", "code"], name="%(app_label)s_%(class)s_unique_code"),
            models.CheckConstraint(condition=Q(unit_price__gte=0), name="%(app_label)s_%(class)s_price_positive"),
            models.CheckConstraint(
                condition=Q(vat_rate__gte=0) & Q(vat_rate__lte=100), name="%(app_label)s_%(class)s_vat_rate_range"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.code} – {self.label}"


# --- Notifications by email ----------------------------------------------------


class NotificationKind(models.TextChoices):
    NEW_ORDER = "new_order", "Nouvelle commande reçue"
    LATE_SOON = "late_soon", "Commande en retard dans moins de 48 heures"
    RELAY_REJECTED = "relay_rejected", "Information refusée par la plateforme d'un client"
    RELAY_LATE = "relay_late", "Alerte de transmission (information en attente depuis 5 minutes)"
    OFFLINE_UNAPPLIED = "offline_unapplied", "Action d'un technicien hors ligne non appliquée"


# What a person receives before choosing: supervisors everything; office staff
# the relay's alerts only (they work the error queue; the orders are the
# supervisors' business), as before the preferences existed.
DEFAULT_NOTIFICATIONS: dict[str, frozenset[str]] = {
    Role.SUPERVISOR: frozenset(NotificationKind.values),
    # Office staff also learn of a technician's offline work that was not applied (a line
    # they removed had been done, say): what they may have to put back on the order.
    Role.OFFICE: frozenset(
        {NotificationKind.RELAY_REJECTED, NotificationKind.RELAY_LATE, NotificationKind.OFFLINE_UNAPPLIED}
    ),
}


class NotificationPreference(models.Model):
    """Which emails a supervisor or an office member wants (page « Mes
    notifications »). No row means the defaults of the person's role."""

    user = models.OneToOneField(
        User, models.CASCADE, related_name="notification_preference", verbose_name="utilisateur"
    )
    new_order = models.BooleanField(NotificationKind.NEW_ORDER.label, default=True)
    late_soon = models.BooleanField(NotificationKind.LATE_SOON.label, default=True)
    relay_rejected = models.BooleanField(NotificationKind.RELAY_REJECTED.label, default=True)
    relay_late = models.BooleanField(NotificationKind.RELAY_LATE.label, default=True)
    offline_unapplied = models.BooleanField(NotificationKind.OFFLINE_UNAPPLIED.label, default=True)
    updated_at = models.DateTimeField("modifiées le", auto_now=True)

    class Meta:
        verbose_name = "préférences de notification"
        verbose_name_plural = "préférences de notification"

    def __str__(self) -> str:
        return f"Notifications de {self.user}"

    @classmethod
    def defaults_for(cls, user: User) -> NotificationPreference:
        wanted = DEFAULT_NOTIFICATIONS.get(user.role, frozenset())
        return cls(user=user, **{kind: kind in wanted for kind in NotificationKind.values})


class OrderNotification(models.Model):
    """An email about an order that went out (or is going out), so that it goes
    once: a new order is announced once; a warning that an order will be late
    goes once per due date (an extension moves the due date, and may earn a new
    warning). The row is written before the email is sent, which claims it."""

    order = models.ForeignKey("orders.Order", models.CASCADE, related_name="+", verbose_name="commande")
    kind = models.CharField(
        "nature",
        max_length=20,
        choices=[
            (NotificationKind.NEW_ORDER.value, "Nouvelle commande"),
            (NotificationKind.LATE_SOON.value, "Retard dans 48 h"),
        ],
    )
    due_at = models.DateTimeField("échéance annoncée", null=True, blank=True)
    created_at = models.DateTimeField("préparée le", auto_now_add=True)
    sent_at = models.DateTimeField("envoyée le", null=True, blank=True)
    recipients = models.PositiveIntegerField("destinataires", default=0)

    class Meta:
        verbose_name = "notification envoyée"
        verbose_name_plural = "notifications envoyées"
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=[NotificationKind.NEW_ORDER, NotificationKind.LATE_SOON]),
                name="%(app_label)s_%(class)s_kind_valid",
            ),
            models.UniqueConstraint(
                fields=["order"],
                condition=Q(kind=NotificationKind.NEW_ORDER),
                name="%(app_label)s_%(class)s_new_order_once",
            ),
            models.UniqueConstraint(
                fields=["order", "due_at"],
                condition=Q(kind=NotificationKind.LATE_SOON),
                name="%(app_label)s_%(class)s_late_soon_once_per_due_date",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} : {self.order}"


class ContractErasure(models.Model):
    """The erasure of the occupants' personal data of a contract after its end
    (seed 004 §5): what was erased, when, by whom (None: the periodic task).
    Written by `orders.erasure.erase_contract`."""

    contract = models.ForeignKey(Contract, models.PROTECT, related_name="erasures", verbose_name="marché")
    at = models.DateTimeField("effacées le")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+", verbose_name="par"
    )
    counts = models.JSONField("effacé", default=dict)

    class Meta:
        verbose_name = "effacement de données personnelles"
        verbose_name_plural = "effacements de données personnelles"
        ordering = ["-at", "-pk"]

    def __str__(self) -> str:
        return f"{self.contract.reference} – {self.at:%d/%m/%Y}"


class ContactAccess(models.Model):
    """Who saw an occupant's contact details, where and when (seed 004 §5.2.4:
    a breach notification says whose data was seen). Kept
    ACCESS_LOG_RETENTION_DAYS, then deleted by a periodic task."""

    class Where(models.TextChoices):
        ORDER_PAGE = "order_page", "Page de la commande"
        SUPERVISOR_PAGE = "supervisor_page", "Page de pilotage de la commande"
        CSV_EXPORT = "csv_export", "Export CSV de la liste"
        ADMIN = "admin", "Administration"
        EXPORT = "export", "Export de réversibilité"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, models.CASCADE, related_name="+", verbose_name="qui")
    at = models.DateTimeField("quand", db_index=True)
    where = models.CharField("où", max_length=20, choices=Where)
    order_id = models.PositiveBigIntegerField("commande (n°)", null=True, blank=True)
    orders = models.PositiveIntegerField("commandes vues", default=1)
    detail = models.CharField("précision", max_length=300, blank=True)

    class Meta:
        verbose_name = "consultation de coordonnées"
        verbose_name_plural = "consultations de coordonnées d'occupants"
        ordering = ["-at", "-pk"]
        indexes = [models.Index(fields=["order_id", "at"], name="portal_access_order_at_idx")]

    def __str__(self) -> str:
        return f"{self.user} – {self.get_where_display()}"


class ExportStatus(models.TextChoices):
    PENDING = "pending", "En attente"
    RUNNING = "running", "En cours"
    DONE = "done", "Prêt"
    FAILED = "failed", "Échec"


def export_path(export: ReversibilityExport, filename: str) -> str:
    return f"exports/{export.pk}-{filename}"


class ReversibilityExport(models.Model):
    """A zip of everything about a client's or a contract's orders (seed 000,
    reversibility), built by a task (`orders.reversibility`), downloaded by
    office staff."""

    client = models.ForeignKey(Client, models.PROTECT, related_name="+", verbose_name="client")
    contract = models.ForeignKey(
        Contract, models.PROTECT, null=True, blank=True, related_name="+", verbose_name="marché"
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, related_name="+", verbose_name="demandé par"
    )
    requested_at = models.DateTimeField("demandé le")
    status = models.CharField("état", max_length=20, choices=ExportStatus, default=ExportStatus.PENDING)
    done_items = models.PositiveIntegerField("éléments exportés", default=0)
    total_items = models.PositiveIntegerField("éléments à exporter", default=0)
    file = models.FileField("fichier", upload_to=export_path, blank=True, max_length=255)
    size = models.PositiveBigIntegerField("taille (octets)", default=0)
    finished_at = models.DateTimeField("terminé le", null=True, blank=True)
    error = models.TextField("erreur", blank=True)

    class Meta:
        verbose_name = "export de réversibilité"
        verbose_name_plural = "exports de réversibilité"
        ordering = ["-requested_at", "-pk"]

    def __str__(self) -> str:
        return f"Export {self.contract or self.client} du {self.requested_at:%d/%m/%Y %H:%M}"

    @property
    def percent(self) -> int:
        if self.status == ExportStatus.DONE:
            return 100
        return round(100 * self.done_items / self.total_items) if self.total_items else 0
