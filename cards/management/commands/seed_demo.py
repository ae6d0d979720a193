import secrets
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from cards.integrator.example_api import CARD_TITLES
from cards.models import CardConfig
from customers.models import Customer, Tenant

DEFAULT_BASE_URL = "http://127.0.0.1:8000/examples/cards/"
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
    admin_password: str
    agent_password: str
    first_customer: Customer
    tenants: int
    customers: int
    configs: int


@transaction.atomic
def demo_seed(*, base_url: str = DEFAULT_BASE_URL) -> DemoSeed:
    """Create (or bring back to their demo state) the admin, tenants, customers and configs.

    Idempotent: rows are matched by natural keys (username, tenant external id, customer
    email, config key), so running it again changes nothing but the admin's password.
    """
    password = secrets.token_urlsafe(12)
    admin, _ = get_user_model().objects.get_or_create(username=DEMO_ADMIN_USERNAME)
    admin.is_staff = admin.is_superuser = admin.is_active = True
    admin.set_password(password)
    admin.save()
    agent_password = _demo_agent_seed()

    tenants = {
        external_id: Tenant.objects.update_or_create(
            external_id=external_id, defaults={"name": name}
        )[0]
        for name, external_id in DEMO_TENANTS
    }
    customers = []
    for full_name, email, external_id, tenant_id in DEMO_CUSTOMERS:
        fields = {
            "full_name": full_name,
            "external_id": external_id,
            "tenant": tenants.get(tenant_id),
        }
        # Emails are unique case-insensitively (see Customer.Meta).
        customer, _ = Customer.objects.update_or_create(
            email__iexact=email, defaults=fields, create_defaults={**fields, "email": email}
        )
        customers.append(customer)

    for position, key in enumerate(DEMO_CARD_KEYS, start=1):
        CardConfig.objects.update_or_create(
            key=key,
            defaults={
                "title": CARD_TITLES[key],
                "api_url": base_url,
                "is_enabled": True,
                "order": position * 10,
            },
        )
    return DemoSeed(
        admin_password=password,
        agent_password=agent_password,
        first_customer=customers[0],
        tenants=len(tenants),
        customers=len(customers),
        configs=len(DEMO_CARD_KEYS),
    )


def _demo_agent_seed() -> str:
    """The "Agents" group with the agent permission, and a non-staff agent in it."""
    group, _ = Group.objects.get_or_create(name=AGENTS_GROUP)
    group.permissions.add(
        Permission.objects.get(content_type__app_label="cards", codename="use_agent_pages")
    )
    password = secrets.token_urlsafe(12)
    agent, _ = get_user_model().objects.get_or_create(username=DEMO_AGENT_USERNAME)
    agent.is_staff = agent.is_superuser = False
    agent.is_active = True
    agent.set_password(password)
    agent.save()
    agent.groups.add(group)
    return password


class Command(BaseCommand):
    help = (
        "Seed the demo: a superuser 'admin' and a non-staff agent 'agent' (in the 'Agents' "
        "group) with fresh random passwords (printed once; run again to reset them), three "
        "tenants, twelve customers and card configs for the built-in example card API. Safe "
        "to run repeatedly."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--base-url",
            default=DEFAULT_BASE_URL,
            help=f"URL of the example card API the configs point at (default {DEFAULT_BASE_URL}).",
        )

    def handle(self, *args, base_url: str, **options) -> None:
        seed = demo_seed(base_url=base_url)
        self.stdout.write(
            f"Seeded {seed.tenants} tenants, {seed.customers} customers and {seed.configs} "
            f"card configs pointing at {base_url}"
        )
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo admin: http://127.0.0.1:8000/admin/ user {DEMO_ADMIN_USERNAME} "
                f"password {seed.admin_password}"
            )
        )
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo agent: http://127.0.0.1:8000/customers/ user {DEMO_AGENT_USERNAME} "
                f"password {seed.agent_password} (not staff; in the {AGENTS_GROUP} group)"
            )
        )
        self.stdout.write(
            f"First customer: http://127.0.0.1:8000/customers/{seed.first_customer.pk}/"
        )
