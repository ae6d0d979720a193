"""`seed_demo`: the demo's admin, tenants, customers and example card configs (`make demo`).

Re-runnable: it adds what is missing and leaves what exists, so an admin's password,
sessions and edits survive `make demo` (docs: README, "make demo").
"""

import re
import secrets
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction
from django.db.models import Count

from cards.integrator.example_api import CARD_TITLES
from cards.models import CardConfig
from customers.models import Customer, Tenant

DEFAULT_PORT = 8000
DEFAULT_BASE_URL = f"http://127.0.0.1:{DEFAULT_PORT}/examples/cards/"
DEMO_ADMIN_USERNAME = "admin"
DEMO_AGENT_USERNAME = "agent"
AGENTS_GROUP = "Agents"

DEMO_TENANTS = (
    ("Acme Corporation", "acme"),
    ("Globex Logistics", "globex"),
    ("Initech Software", "initech"),
)
# (full name, email, external id, tenant external id); some have no tenant or external id,
# as real customer lists do.
DEMO_CUSTOMERS = (
    ("Alex Morgan", "alex.morgan@acme.example", "u_1001", "acme"),
    ("Priya Raman", "priya.raman@acme.example", "u_1002", "acme"),
    ("Tom Becker", "tom.becker@acme.example", None, "acme"),
    ("Sofia Alvarez", "sofia.alvarez@globex.example", "u_2001", "globex"),
    ("Kenji Watanabe", "kenji.watanabe@globex.example", "u_2002", "globex"),
    ("Amara Okafor", "amara.okafor@globex.example", "u_2003", "globex"),
    ("Lena Fischer", "lena.fischer@initech.example", "u_3001", "initech"),
    ("Marcus Chen", "marcus.chen@initech.example", None, "initech"),
    ("Chloé Dubois", "chloe.dubois@mailbox.example", "u_4001", None),
    ("Noah Williams", "noah.williams@mailbox.example", None, None),
    ("Fatima Zahra", "fatima.zahra@inbox.example", "u_4003", None),
    ("Oliver Brennan", "oliver.brennan@inbox.example", None, None),
)
# Display order; `gallery` last since it is long.
DEMO_CARD_KEYS = (
    "customer-details",
    "subscription",
    "last-order",
    "usage",
    "latest-invoice",
    "recent-errors",
    "no-data",
    "empty",
    "gallery",
)


@dataclass(frozen=True)
class DemoSeed:
    admin_password: str | None  # None: the admin existed and kept their password
    agent_password: str | None  # likewise for the non-staff agent
    first_customer: Customer
    tenants: int
    customers: int
    configs: int
    kept_configs: tuple[str, ...] = ()  # keys an admin had edited, left as they were


# A config still points at the example API when its URL is the demo's, whatever the port.
_DEMO_URL = re.compile(r"^http://(127\.0\.0\.1|localhost)(:\d+)?/examples/cards/\Z")


_CONFIG_DEFAULTS = {
    name: CardConfig._meta.get_field(name).default
    for name in ("default_ttl_seconds", "keep_warm", "max_requests_per_second")
}


def demo_base_url(*, port: int, host: str = "127.0.0.1") -> str:
    return f"http://{host}:{port}/examples/cards/"


def _as_seeded(config: CardConfig, *, position: int) -> bool:
    """Whether a demo config is still what the seed made of it (the API's port aside).

    Anything an admin changes (its URL to their own API, title, order, TTL, enabling,
    keep-warm, a header) makes it theirs: the seed leaves it alone from then on.
    """
    return (
        bool(_DEMO_URL.match(config.api_url))
        and config.title == CARD_TITLES[config.key]
        and config.is_enabled
        and config.order == position * 10
        and config.default_ttl_seconds == _CONFIG_DEFAULTS["default_ttl_seconds"]
        and config.keep_warm == _CONFIG_DEFAULTS["keep_warm"]
        and config.max_requests_per_second == _CONFIG_DEFAULTS["max_requests_per_second"]
        and not config.header_count
    )


def _user_seed(username: str, *, superuser: bool, new_password: bool) -> str | None:
    """A demo user (superuser, or a plain active user); a password only when it is new
    (first run, or asked for).

    Keeping the password keeps the user's open sessions too: Django ends a user's sessions
    when their password hash changes.
    """
    user, created = get_user_model().objects.get_or_create(username=username)
    password = None
    if created or new_password or not user.has_usable_password():
        password = secrets.token_urlsafe(12)
        user.set_password(password)
    wanted = (superuser, superuser, True)
    if created or password or (user.is_staff, user.is_superuser, user.is_active) != wanted:
        user.is_staff, user.is_superuser, user.is_active = wanted
        user.save()
    return password


@transaction.atomic
def demo_seed(*, base_url: str = DEFAULT_BASE_URL, new_password: bool = False) -> DemoSeed:
    """Create what the demo needs and is missing: the admin, tenants, customers, configs.

    Idempotent and respectful of edits: rows are matched by natural keys (username,
    tenant external id, customer email, config key) and existing ones are left as they
    are, except a demo config nobody edited, which is pointed at `base_url` (the demo may
    run on another port this time). The admin keeps their password unless `new_password`.
    """
    password = _user_seed(DEMO_ADMIN_USERNAME, superuser=True, new_password=new_password)
    agent_password = _demo_agent_seed(new_password=new_password)
    tenants = {
        external_id: Tenant.objects.get_or_create(external_id=external_id, defaults={"name": name})[
            0
        ]
        for name, external_id in DEMO_TENANTS
    }
    customers = []
    for full_name, email, external_id, tenant_id in DEMO_CUSTOMERS:
        # Emails are unique case-insensitively (see Customer.Meta).
        customer = Customer.objects.filter(email__iexact=email).first()
        if customer is None:
            customer = Customer.objects.create(
                email=email,
                full_name=full_name,
                external_id=external_id,
                tenant=tenants.get(tenant_id),
            )
        customers.append(customer)

    existing = {
        config.key: config
        for config in CardConfig.objects.filter(key__in=DEMO_CARD_KEYS).annotate(
            header_count=Count("headers")
        )
    }
    kept = []
    for position, key in enumerate(DEMO_CARD_KEYS, start=1):
        config = existing.get(key)
        if config is None:
            CardConfig.objects.create(
                key=key,
                title=CARD_TITLES[key],
                api_url=base_url,
                is_enabled=True,
                order=position * 10,
            )
        elif not _as_seeded(config, position=position):
            kept.append(key)
        elif config.api_url != base_url:
            config.api_url = base_url
            config.save(update_fields=["api_url", "updated_at"])
    return DemoSeed(
        admin_password=password,
        agent_password=agent_password,
        first_customer=customers[0],
        tenants=len(tenants),
        customers=len(customers),
        configs=len(DEMO_CARD_KEYS),
        kept_configs=tuple(kept),
    )


def _demo_agent_seed(*, new_password: bool) -> str | None:
    """The "Agents" group with the agent permission, and a non-staff agent in it."""
    group, _ = Group.objects.get_or_create(name=AGENTS_GROUP)
    group.permissions.add(
        Permission.objects.get(content_type__app_label="cards", codename="use_agent_pages")
    )
    password = _user_seed(DEMO_AGENT_USERNAME, superuser=False, new_password=new_password)
    get_user_model().objects.get(username=DEMO_AGENT_USERNAME).groups.add(group)
    return password


class Command(BaseCommand):
    help = (
        "Seed the demo: a superuser 'admin' and a non-staff agent 'agent' (in the 'Agents' "
        "group), their random passwords printed on the first run and kept on later runs "
        "unless --new-password, three tenants, twelve customers and card configs for the "
        "built-in example card API. Safe to run repeatedly: it adds what is missing and "
        "never overwrites what an admin edited."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--port",
            type=int,
            default=DEFAULT_PORT,
            help=f"Port the demo server runs on, for the printed URLs and the example card "
            f"API's URL (default {DEFAULT_PORT}).",
        )
        parser.add_argument(
            "--base-url",
            default=None,
            help="URL of the example card API the configs point at (default "
            "http://127.0.0.1:PORT/examples/cards/).",
        )
        parser.add_argument(
            "--new-password",
            action="store_true",
            help="Give the admin a new random password (this ends their open sessions).",
        )

    def handle(self, *args, port: int, base_url: str | None, new_password: bool, **options):
        base_url = base_url or demo_base_url(port=port)
        site = f"http://127.0.0.1:{port}"
        seed = demo_seed(base_url=base_url, new_password=new_password)
        self.stdout.write(
            f"Seeded {seed.tenants} tenants, {seed.customers} customers and {seed.configs} "
            f"card configs pointing at {base_url}"
        )
        if seed.kept_configs:
            self.stdout.write(
                f"Left as an admin edited them: {', '.join(seed.kept_configs)} "
                "(delete one to have it seeded again)."
            )
        if seed.admin_password:
            login = f"password {seed.admin_password}"
        else:
            login = "password unchanged (the one printed on the first run; --new-password, or "
            login += "`make demo NEW_PASSWORD=1`, makes a new one)"
        self.stdout.write(
            self.style.SUCCESS(f"Demo admin: {site}/admin/ user {DEMO_ADMIN_USERNAME} {login}")
        )
        agent_login = (
            f"password {seed.agent_password}" if seed.agent_password else "password unchanged"
        )
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo agent: {site}/customers/ user {DEMO_AGENT_USERNAME} {agent_login} "
                f"(not staff; in the {AGENTS_GROUP} group)"
            )
        )
        self.stdout.write(f"First customer: {site}/customers/{seed.first_customer.pk}/")
