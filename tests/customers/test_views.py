"""Agent pages: login, directory, the customer page (SPEC §1, §7, §8)."""

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from cards.models import CardInstance
from config.middleware import CONTENT_SECURITY_POLICY
from customers.selectors import customer_get, customer_search
from customers.viewing import customer_mark_viewed
from tests.factories import (
    CardConfigFactory,
    CardInstanceFactory,
    CustomerFactory,
    TenantFactory,
)

pytestmark = pytest.mark.django_db
State = CardInstance.State


def detail_url(customer) -> str:
    return reverse("customers:detail", args=[customer.pk])


def loaded(customer, config, components, *, ttl=300, loaded_ago=timedelta(seconds=10)):
    at = timezone.now() - loaded_ago
    return CardInstanceFactory(
        customer=customer,
        config=config,
        state=State.LOADED,
        components=components,
        ttl_seconds=ttl,
        loaded_at=at,
        expires_at=at + timedelta(seconds=ttl),
    )


# --- Access -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["customers:directory", "customers:detail"])
def test_it_sends_anonymous_visitors_to_the_login_page(client, name):
    customer = CustomerFactory()
    url = reverse(name, args=[customer.pk] if name == "customers:detail" else [])

    response = client.get(url)

    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={url}"


def test_the_root_leads_to_the_directory(agent_client):
    response = agent_client.get("/")

    assert response.status_code == 302
    assert response["Location"] == reverse("customers:directory")


def test_the_login_page_is_styled_and_logs_in(client, agent):
    page = client.get(reverse("login"))
    assert page.status_code == 200
    assert b'name="username"' in page.content and b"app.css" in page.content

    response = client.post(reverse("login"), {"username": "agent", "password": "pass-for-tests"})

    assert response.status_code == 302
    assert response["Location"] == reverse("customers:directory")


def test_it_logs_out_with_a_post_form_only(agent_client):
    page = agent_client.get(reverse("customers:directory"))
    assert f'method="post" action="{reverse("logout")}"'.encode() in page.content

    assert agent_client.get(reverse("logout")).status_code == 405
    response = agent_client.post(reverse("logout"))

    assert response.status_code == 302
    assert agent_client.get(reverse("customers:directory")).status_code == 302


# --- Directory --------------------------------------------------------------------------


@pytest.mark.parametrize("query", ["ALEX@EXAMPLE", "Morgan", "u_777", "Acme Corp", "acme-ext"])
def test_directory_finds_customers_by_email_name_external_id_or_tenant(agent_client, query):
    tenant = TenantFactory(name="Acme Corp", external_id="acme-ext")
    CustomerFactory(
        email="alex@example.com", full_name="Alex Morgan", external_id="u_777", tenant=tenant
    )
    CustomerFactory(email="sam@other.example", full_name="Sam Lee", external_id="u_1")

    response = agent_client.get(reverse("customers:directory"), {"q": query})

    assert response.status_code == 200
    assert [c.email for c in response.context["customers"]] == ["alex@example.com"]


def test_search_needs_every_word_to_match():
    CustomerFactory(email="alex@example.com", full_name="Alex Morgan")
    CustomerFactory(email="alex@other.example", full_name="Alex Stone")

    found = customer_search(query="alex  stone")

    assert [c.email for c in found] == ["alex@other.example"]


def test_directory_costs_the_same_queries_for_one_or_many_customers(agent_client):
    tenant = TenantFactory()
    CustomerFactory(tenant=tenant)
    agent_client.get(reverse("customers:directory"))  # reads the permission, remembered
    with CaptureQueriesContext(connection) as one:
        agent_client.get(reverse("customers:directory"))
    for _ in range(20):
        CustomerFactory(tenant=TenantFactory())
    with CaptureQueriesContext(connection) as many:
        agent_client.get(reverse("customers:directory"))

    assert len(many) == len(one)


def test_directory_escapes_customer_fields(agent_client):
    CustomerFactory(full_name="<script>alert(1)</script>", external_id='"><img src=x>')

    response = agent_client.get(reverse("customers:directory"))

    assert b"<script>alert(1)" not in response.content
    assert b"&lt;script&gt;alert(1)&lt;/script&gt;" in response.content
    assert b'"><img src=x>' not in response.content


# --- Customer page ----------------------------------------------------------------------


def test_customer_page_shows_the_customers_details(agent_client):
    tenant = TenantFactory(name="Globex", external_id="globex")
    customer = CustomerFactory(
        email="kim@globex.example", full_name="Kim Park", external_id="u_42", tenant=tenant
    )

    response = agent_client.get(detail_url(customer))

    assert response.status_code == 200
    html = response.content.decode()
    for text in ["Kim Park", "kim@globex.example", "u_42", customer.public_id, "Globex", "globex"]:
        assert text in html
    assert f'data-copy-value="{customer.public_id}"' in html


def test_customer_page_escapes_customer_fields(agent_client):
    tenant = TenantFactory(name="<b>Evil Inc</b>", external_id="<i>t</i>")
    customer = CustomerFactory(
        full_name='<img src=x onerror="alert(1)">',
        email="evil@example.com",
        external_id='" onmouseover="alert(1)',
        tenant=tenant,
    )

    html = agent_client.get(detail_url(customer)).content.decode()

    assert "<img src=x" not in html and "<b>Evil" not in html and "<i>t</i>" not in html
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in html
    assert 'data-copy-value="&quot; onmouseover=&quot;alert(1)"' in html


def test_customer_page_shows_edited_details_at_once(agent_client):
    tenant = TenantFactory(name="Globex", external_id="globex")
    customer = CustomerFactory(full_name="Kim Park", external_id="u_42", tenant=tenant)
    agent_client.get(detail_url(customer))  # the details are rendered once, then reused

    customer.full_name, customer.email, customer.external_id = "Kim Lee", "kim@lee.example", ""
    customer.save()
    tenant.name = "Initech"
    tenant.save()
    html = agent_client.get(detail_url(customer)).content.decode()

    assert "Kim Lee" in html and "kim@lee.example" in html and "Initech" in html
    assert "Kim Park" not in html and "u_42" not in html and "Globex" not in html
    assert "Not set" in html


def test_customer_page_links_to_the_admin_for_staff_only(client, agent, staff_admin):
    customer = CustomerFactory()
    admin_link = reverse("admin:customers_customer_change", args=[customer.pk])

    def page_as(user) -> str:
        client.force_login(user)
        return client.get(detail_url(customer)).content.decode()

    assert admin_link not in page_as(agent)
    assert admin_link in page_as(staff_admin)
    assert admin_link not in page_as(agent)


def test_customer_get_reads_the_customer_and_tenant_in_one_query(django_assert_num_queries):
    tenant = TenantFactory(name="Globex")
    customer = CustomerFactory(tenant=tenant)

    with django_assert_num_queries(1):
        found = customer_get(pk=customer.pk)
        assert found.tenant.name == "Globex"

    assert (found.pk, found.email, found.public_id, found.created_at) == (
        customer.pk,
        customer.email,
        customer.public_id,
        customer.created_at,
    )
    assert customer_get(pk=CustomerFactory(tenant=None).pk).tenant is None
    assert customer_get(pk=999_999) is None


def test_customer_page_records_the_view_at_most_every_30_seconds(agent_client):
    customer = CustomerFactory()

    agent_client.get(detail_url(customer))
    customer.refresh_from_db()
    first = customer.last_viewed_at
    agent_client.get(detail_url(customer))
    customer.refresh_from_db()

    assert first is not None and customer.last_viewed_at == first


def test_mark_viewed_writes_again_after_30_seconds():
    customer = CustomerFactory()
    customer.last_viewed_at = old = timezone.now() - timedelta(seconds=31)
    customer.save()

    customer_mark_viewed(customer=customer)
    customer.refresh_from_db()

    assert customer.last_viewed_at > old


def test_customer_page_is_404_for_an_unknown_customer(agent_client):
    assert agent_client.get(reverse("customers:detail", args=[999_999])).status_code == 404


def test_customer_page_renders_cached_cards_at_once_and_skeletons_for_the_others(agent_client):
    customer = CustomerFactory()
    plan = CardConfigFactory(key="plan", title="Plan", order=1)
    orders = CardConfigFactory(key="orders", title="Orders", order=2)
    loaded(customer, plan, [{"componentText": {"text": "Plan: **Pro**"}}])

    html = agent_client.get(detail_url(customer)).content.decode()

    assert html.index("Plan") < html.index("Orders")  # config order
    plan_card = html[html.index('data-card-key="plan"') : html.index('data-card-key="orders"')]
    assert "<strong>Pro</strong>" in plan_card and 'data-card-state="loaded"' in plan_card
    assert "loaded <time" in plan_card and "stale" not in plan_card
    orders_card = html[html.index('data-card-key="orders"') : html.index('id="cards-poller"')]
    assert 'data-card-state="loading"' in orders_card and "cc-skeleton" in orders_card
    # One poller waits for every card still loading (cards.live.views.card_updates).
    poller = html[html.index('<div id="cards-poller"') :]
    poller = poller[: poller.index("</div>")]
    assert f'hx-get="/customers/{customer.pk}/card-updates/"' in poller
    assert 'hx-include="this" hx-trigger="load, card-retry"' in poller
    # Each card with the version of it the page shows: the plan's stored one, no orders yet.
    assert re.search(rf'name="cards" value="{plan.pk}:[1-9]\d*,{orders.pk}:0"', poller)
    assert f'name="pending" value="{orders.pk}"' in poller and 'name="started" value="1"' in poller
    assert "hx-get" not in plan_card and "hx-get" not in orders_card  # cards do not poll


def test_customer_page_shows_expired_cards_stale_while_they_reload(agent_client):
    customer = CustomerFactory()
    plan = CardConfigFactory(key="plan")
    loaded(
        customer,
        plan,
        [{"componentText": {"text": "Old plan"}}],
        ttl=60,
        loaded_ago=timedelta(minutes=5),
    )

    html = agent_client.get(detail_url(customer)).content.decode()

    assert "Old plan" in html
    # The browser says "5 minutes ago" from the moment (static/app.js).
    assert "stale · loaded <time datetime=" in html and "data-relative" in html
    assert 'data-card-state="loading"' in html and "cc-card--stale" in html


def test_customer_page_hides_null_cards_and_says_nothing_to_show_for_empty_ones(agent_client):
    customer = CustomerFactory()
    loaded(customer, CardConfigFactory(key="nothing", title="Null card"), None)
    loaded(customer, CardConfigFactory(key="empty", title="Empty card"), [])

    html = agent_client.get(detail_url(customer)).content.decode()

    assert "Null card" not in html
    assert 'data-card-state="hidden" hidden' in html
    assert "Empty card" in html and "Nothing to show" in html


def test_customer_page_does_not_show_disabled_cards(agent_client):
    customer = CustomerFactory()
    CardConfigFactory(key="off", title="Switched off", is_enabled=False)

    html = agent_client.get(detail_url(customer)).content.decode()

    assert "Switched off" not in html and "No cards are configured yet." in html


def _card_in(state: str, customer, config, n: int) -> None:
    """The customer's instance of `config` in one of the states a page shows."""
    if state == "loaded":
        loaded(customer, config, [{"componentBadge": {"badgeLabel": f"b{n}"}}])
    elif state == "hidden":
        loaded(customer, config, None)
    elif state == "error":
        CardInstanceFactory(
            customer=customer,
            config=config,
            state=State.ERROR,
            error_kind="MISSING_CARD",
            errored_at=timezone.now(),
            expires_at=timezone.now() + timedelta(minutes=5),
        )
    # "missing": no instance, so the page claims it


@pytest.mark.parametrize("state", ["loaded", "hidden", "error", "missing"])
def test_customer_page_costs_the_same_queries_for_1_or_25_cards(agent_client, state):
    def page_queries(customer) -> int:
        with CaptureQueriesContext(connection) as queries:
            response = agent_client.get(detail_url(customer))
        assert response.status_code == 200
        return len(queries)

    configs = [CardConfigFactory() for _ in range(25)]
    one, many = CustomerFactory(), CustomerFactory()
    agent_client.get(reverse("customers:directory"))  # reads the permission, remembered
    _card_in(state, one, configs[0], 0)
    for n, config in enumerate(configs):
        _card_in(state, many, config, n)
    for config in configs[1:]:
        config.is_enabled = False
        config.save()
    with_one = [page_queries(one), page_queries(one)]  # first view, then with cached cards
    for config in configs:
        config.is_enabled = True
        config.save()

    assert [page_queries(many), page_queries(many)] == with_one
    # Session, user, customer (with its tenant), viewed, configs, instances (the agent's
    # permission was read by the session's first request and is remembered); a view that
    # renders stored cards not in the cache yet reads their components; a claim (missing
    # cards) takes seven: headers, signing secrets, savepoint, insert, update, select,
    # release.
    assert with_one[0] <= 13 and with_one[1] <= 6, with_one


def test_customer_page_costs_a_bounded_number_of_queries_whatever_its_cards_states(
    agent_client,
):
    customer = CustomerFactory()
    for n in range(25):  # a mix of loaded, hidden, error and missing
        _card_in(["loaded", "hidden", "error", "missing"][n % 4], customer, CardConfigFactory(), n)

    with CaptureQueriesContext(connection) as first:
        agent_client.get(detail_url(customer))
    with CaptureQueriesContext(connection) as cached:
        agent_client.get(detail_url(customer))

    assert len(first) <= 16 and len(cached) <= 8, (len(first), len(cached))


def test_a_page_of_cached_cards_costs_five_queries(
    agent_client, django_assert_num_queries, settings
):
    customer = CustomerFactory(tenant=TenantFactory())
    for n in range(25):
        _card_in("loaded", customer, CardConfigFactory(), n)
    # Renders the cards into the cache, marks the customer viewed, and reads the agent's
    # permission, which is remembered (cards.live.access).
    agent_client.get(detail_url(customer))

    # The session, its user, the customer with their tenant, the configs (with who sees
    # them), the instances. With Redis (REDIS_URL), sessions live there: one query fewer.
    with django_assert_num_queries(5 - ("sessions" in settings.CACHES)):
        response = agent_client.get(detail_url(customer))

    assert response.content.decode().count('data-card-state="loaded"') == 25


def test_agent_pages_send_a_content_security_policy(agent_client):
    customer = CustomerFactory()

    for url in [reverse("customers:directory"), detail_url(customer), reverse("login")]:
        response = agent_client.get(url)
        assert response["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert "script-src 'self';" in CONTENT_SECURITY_POLICY


def test_admin_pages_send_the_same_policy(admin_client_logged_in):
    response = admin_client_logged_in.get(reverse("admin:index"))

    assert response.status_code == 200
    assert response["Content-Security-Policy"] == CONTENT_SECURITY_POLICY


def test_agent_pages_have_no_inline_script_or_style(agent_client):
    customer = CustomerFactory()
    loaded(customer, CardConfigFactory(key="plan"), [{"componentText": {"text": "x"}}])

    for url in [reverse("customers:directory"), detail_url(customer), reverse("login")]:
        html = agent_client.get(url).content.decode()
        assert "<style" not in html and " style=" not in html and " on" + "click=" not in html
        for tag in html.split("<script")[1:]:
            assert tag.lstrip().startswith("src="), tag[:80]
