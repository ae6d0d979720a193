from datetime import datetime, timedelta

from django.conf import settings
from django.core.validators import (
    MaxValueValidator,
    MinValueValidator,
    RegexValidator,
    URLValidator,
)
from django.db import models
from django.utils import timezone

from cards.crypto import EncryptedTextField
from cards.protocol.outcomes import ErrorKind

MIN_TTL_SECONDS = 15
MAX_TTL_SECONDS = 31_536_000  # one year
MAX_ORDER = 100_000
MAX_HEADERS = 20

key_validator = RegexValidator(
    r"^[a-zA-Z0-9_-]+\Z",
    "Use only letters, digits, hyphens and underscores (no spaces).",
)
header_name_validator = RegexValidator(
    # An HTTP token (RFC 9110 §5.6.2).
    r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z",
    "A header name is an HTTP token: letters, digits and !#$%%&'*+.^_`|~- only, no spaces "
    "or colons.",
)


class CardConfig(models.Model):
    """One card agents see: where to fetch it and how long to keep it (SPEC §2)."""

    title = models.CharField(
        max_length=500, help_text="Shown to agents, even when the card fails to load."
    )
    key = models.CharField(
        max_length=500,
        unique=True,
        validators=[key_validator],
        help_text="Sent to the card API in cardKeys; the API answers with the same key.",
    )
    api_url = models.CharField(
        "API URL",
        max_length=600,
        validators=[URLValidator(schemes=["http", "https"])],
        help_text="The card API endpoint; receives a signed POST (https:// required).",
    )
    default_ttl_seconds = models.PositiveIntegerField(
        "default TTL (seconds)",
        default=300,
        validators=[MinValueValidator(MIN_TTL_SECONDS), MaxValueValidator(MAX_TTL_SECONDS)],
        help_text="How long a loaded card is kept when the API gives no timeToLiveSeconds "
        f"({MIN_TTL_SECONDS} s to one year).",
    )
    is_enabled = models.BooleanField(
        "enabled", default=True, help_text="Disabled cards are neither loaded nor shown."
    )
    order = models.PositiveIntegerField(
        default=0,
        validators=[MaxValueValidator(MAX_ORDER)],
        help_text="Cards are shown in ascending order; ties by creation.",
    )
    keep_warm = models.BooleanField(
        default=False,
        help_text="Reload this card for every customer ahead of expiry, not only for "
        "customers agents are viewing.",
    )
    max_requests_per_second = models.PositiveIntegerField(
        default=10,
        validators=[MinValueValidator(1), MaxValueValidator(10_000)],
        help_text="Ceiling on keep-warm requests per second to this card's API.",
    )
    # This card API's own signing secrets (SPEC §3, §8), generated in admin
    # (cards.configuration.signing): the current one, and the one it replaced while the
    # API switches over. Without them, CARDS_SIGNING_SECRETS signs.
    signing_secret = EncryptedTextField(
        null=True, blank=True, editable=False, help_text="Encrypted at rest; shown once."
    )
    signing_secret_previous = EncryptedTextField(
        null=True, blank=True, editable=False, help_text="Still sent until retired."
    )
    signing_secret_set_at = models.DateTimeField(null=True, blank=True, editable=False)
    groups = models.ManyToManyField(
        "auth.Group",
        blank=True,
        related_name="card_configs",
        verbose_name="shown to groups",
        help_text="Only agents in one of these groups see this card; leave empty for every "
        "agent (users with the “Can use the agent pages” permission).",
    )
    max_in_flight = models.PositiveIntegerField(
        "max requests in flight",
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(10_000)],
        help_text="At most this many requests to this card's API at once, per loading "
        "process; loads over it wait their turn. Empty: CARDS_API_MAX_IN_FLIGHT (250).",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["order", "id"]
        permissions = [
            ("reveal_secrets", "Can see card API header values in full"),
            ("use_agent_pages", "Can use the agent pages (customers and their cards)"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(
                    default_ttl_seconds__gte=MIN_TTL_SECONDS,
                    default_ttl_seconds__lte=MAX_TTL_SECONDS,
                ),
                name="cardconfig_default_ttl_range",
            ),
            models.CheckConstraint(
                condition=models.Q(order__lte=MAX_ORDER), name="cardconfig_order_range"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.title} ({self.key})"

    @property
    def signing_secrets(self) -> tuple[str, ...]:
        """The config's own signing secrets, current first; empty: the fallback signs."""
        return tuple(s for s in (self.signing_secret, self.signing_secret_previous) if s)


class CardConfigHeader(models.Model):
    """A header sent with every request for a config; the value is a secret (SPEC §8)."""

    config = models.ForeignKey(CardConfig, on_delete=models.CASCADE, related_name="headers")
    name = models.CharField(max_length=100, validators=[header_name_validator])
    value = EncryptedTextField(help_text="Encrypted at rest; masked in lists and logs.")

    class Meta:
        ordering = ["id"]
        verbose_name = "API header"

    def __str__(self) -> str:
        return self.name


class CardInstance(models.Model):
    """One card for one customer: its cached components, its last outcome and its claim
    (SPEC §6).

    `state` is the last stored outcome (`loaded` or `error`); `loading` only until the
    first one is stored. Whether someone is loading the card is the claim alone
    (`claimed_at`/`claim_token`, set and cleared together): it is live while younger than
    CARDS_CLAIM_DEAD_AFTER_SECONDS, dead after (`claim_is_live`, `claim_live_q`, the one
    definition every reader and statement uses). A claim never changes `state`, the
    components or `updated_at`, so a card being reloaded still shows what it had, and is
    still fresh until its expiry. `components`, `warnings` and `loaded_at` always hold the
    last good answer. `expires_at` is when the last outcome stops being fresh: loaded_at + TTL,
    errored_at + 5 min for integration errors, errored_at for retriable ones.
    """

    class State(models.TextChoices):
        LOADING = "loading", "Loading (nothing stored yet)"
        LOADED = "loaded"
        ERROR = "error"

    ErrorKind = ErrorKind  # the protocol's (cards.protocol.outcomes)

    customer = models.ForeignKey(
        "customers.Customer", on_delete=models.CASCADE, related_name="card_instances"
    )
    config = models.ForeignKey(CardConfig, on_delete=models.CASCADE, related_name="instances")
    state = models.CharField(max_length=10, choices=State.choices, default=State.LOADING)
    components = models.JSONField(null=True, blank=True)
    # What the lenient reading warned about in `components` (SPEC §5): [{"path", "message"}].
    warnings = models.JSONField(
        default=list, blank=True, help_text="Non-fatal problems of the stored answer."
    )
    ttl_seconds = models.PositiveIntegerField(null=True, blank=True)
    loaded_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    error_kind = models.CharField(max_length=20, choices=ErrorKind.choices, blank=True)
    error_detail = models.JSONField(null=True, blank=True)
    errored_at = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    claim_token = models.CharField(max_length=32, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["config__order", "config_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "config"], name="cardinstance_customer_config_unique"
            ),
            models.CheckConstraint(
                condition=models.Q(ttl_seconds__lte=MAX_TTL_SECONDS),
                name="cardinstance_ttl_range",
            ),
            # The claim's two columns are set and cleared together.
            models.CheckConstraint(
                condition=models.Q(claimed_at__isnull=True, claim_token="")
                | (models.Q(claimed_at__isnull=False) & ~models.Q(claim_token="")),
                name="cardinstance_claim_whole",
            ),
        ]
        indexes = [
            models.Index(fields=["expires_at"], name="cardinstance_expires_idx"),
            # Keep-warm picks one config's cards due soonest (cards.background.refresh).
            models.Index(fields=["config", "expires_at"], name="cardinstance_config_expiry_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.config.key} for {self.customer_id}"

    @staticmethod
    def claim_dead_before(now: datetime) -> datetime:
        """Claims taken before this moment are dead (SPEC §6: deadline + retry + margin)."""
        return now - timedelta(seconds=settings.CARDS_CLAIM_DEAD_AFTER_SECONDS)

    @classmethod
    def claim_live_q(cls, now: datetime) -> models.Q:
        """Rows someone is loading: the one definition of a live claim, for the ORM and
        (compiled) for the hand-written statements of cards.loading.statements."""
        return models.Q(claimed_at__gte=cls.claim_dead_before(now))

    @classmethod
    def claim_free_q(cls, now: datetime) -> models.Q:
        """Rows nobody is loading: never claimed, released, or under a dead claim."""
        return models.Q(claimed_at__isnull=True) | models.Q(
            claimed_at__lt=cls.claim_dead_before(now)
        )

    def claim_is_live(self, now: datetime | None = None) -> bool:
        """`claim_live_q` for a row already read."""
        now = now or timezone.now()
        return self.claimed_at is not None and self.claimed_at >= self.claim_dead_before(now)

    def is_fresh(self, now: datetime | None = None) -> bool:
        """Whether the last stored outcome is still current (a claim does not change it)."""
        now = now or timezone.now()
        return self.state != self.State.LOADING and bool(self.expires_at and self.expires_at > now)

    def needs_load(self, now: datetime | None = None) -> bool:
        """Nobody is loading it and its last outcome is missing or expired (SPEC §7)."""
        now = now or timezone.now()
        return not self.claim_is_live(now) and not self.is_fresh(now)

    @property
    def has_data(self) -> bool:
        """Whether a good answer was ever stored (its components may still be null)."""
        return self.loaded_at is not None


class CardRequest(models.Model):
    """One card's part in one request to a card API, for health and diagnosis (SPEC §9).

    A batched request of N cards writes N rows sharing `batch_id`, so per-config health
    is a plain filter. `error_detail` keeps the full diagnosis of a failure.
    """

    # Not database constraints: a load that finishes while its config or customer is
    # being deleted still commits (its rows for them are left without their key, and
    # purged with the log). Deleting through Django still cascades (or nulls).
    config = models.ForeignKey(
        CardConfig, on_delete=models.CASCADE, related_name="requests", db_constraint=False
    )
    customer = models.ForeignKey(
        "customers.Customer",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_constraint=False,
    )
    batch_id = models.CharField(max_length=32)
    keys = models.JSONField(default=list, help_text="Every key the request carried.")
    status_code = models.PositiveIntegerField(null=True, blank=True)
    error_kind = models.CharField(max_length=20, choices=CardInstance.ErrorKind.choices, blank=True)
    error_detail = models.JSONField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    response_bytes = models.PositiveIntegerField(default=0)
    attempt = models.PositiveSmallIntegerField(default=1)
    signed_with = models.CharField(
        max_length=40,
        blank=True,
        help_text="Fingerprints of the secrets that signed the request, or unsigned.",
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["config", "-created_at"], name="cardrequest_config_time_idx"),
            models.Index(fields=["created_at"], name="cardrequest_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.config_id} {self.error_kind or 'OK'} at {self.created_at:%Y-%m-%d %H:%M:%S}"

    @property
    def ok(self) -> bool:
        return not self.error_kind
