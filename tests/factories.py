import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.utils import timezone

from cards.models import CardConfig, CardConfigHeader, CardInstance
from customers.models import Customer, Tenant


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"agent{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@support.example")
    password = factory.django.Password("pass-for-tests")


def agents_group(name: str = "Agents") -> Group:
    """A group holding the agent permission (`cards.use_agent_pages`)."""
    group, _ = Group.objects.get_or_create(name=name)
    group.permissions.add(
        Permission.objects.get(content_type__app_label="cards", codename="use_agent_pages")
    )
    return group


def agent_user(username: str = "agent", *groups: str):
    """A non-staff agent: in "Agents", and in each of `groups` (created as needed)."""
    user = UserFactory(username=username)
    user.groups.add(agents_group(), *(Group.objects.get_or_create(name=g)[0] for g in groups))
    return user


class TenantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tenant

    name = factory.Sequence(lambda n: f"Tenant {n}")
    external_id = factory.Sequence(lambda n: f"tenant_{n}")


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    email = factory.Sequence(lambda n: f"customer{n}@example.com")
    full_name = factory.Sequence(lambda n: f"Customer {n}")
    external_id = factory.Sequence(lambda n: f"u_{n}")
    tenant = None


class CardConfigFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CardConfig

    title = factory.Sequence(lambda n: f"Card {n}")
    key = factory.Sequence(lambda n: f"card-{n}")
    api_url = "https://cards.example.com/api"
    default_ttl_seconds = 300
    order = factory.Sequence(lambda n: n)


class CardConfigHeaderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CardConfigHeader

    config = factory.SubFactory(CardConfigFactory)
    name = "Authorization"
    value = "Bearer s3cr3t-token-value"


class CardInstanceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CardInstance

    customer = factory.SubFactory(CustomerFactory)
    config = factory.SubFactory(CardConfigFactory)

    class Params:
        # Someone else (another page, a worker) is loading it right now; the claim changes
        # nothing else (a row never stored stays `loading`, the model's default).
        claimed = factory.Trait(
            claimed_at=factory.LazyFunction(timezone.now),
            claim_token="someone-else",
        )
