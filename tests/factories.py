import factory
from django.contrib.auth import get_user_model
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
