"""The directory's search: every word in some field, the exact-match fast path, keyset
pages without a count, and (on PostgreSQL) the trigram index the search is planned on."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from customers.models import Tenant
from customers.search import SEARCH_TEXT_STATISTICS, tenant_search_text
from customers.selectors import customer_directory_page, customer_find, customer_search
from tests.factories import CustomerFactory, TenantFactory

pytestmark = pytest.mark.django_db


def emails(customers) -> list[str]:
    return [c.email for c in customers]


def test_every_word_must_match_some_field_each_in_any_field():
    acme = TenantFactory(name="Acme Corp", external_id="acme-ext")
    CustomerFactory(email="alex@example.com", full_name="Alex Morgan", tenant=acme)
    CustomerFactory(email="alex@other.example", full_name="Alex Stone", external_id="u_9")
    CustomerFactory(email="sam@example.com", full_name="Sam Stone", tenant=acme)

    assert emails(customer_search(query="ALEX acme")) == ["alex@example.com"]
    assert emails(customer_search(query="stone u_9")) == ["alex@other.example"]
    assert emails(customer_search(query="acme-EXT stone")) == ["sam@example.com"]
    assert emails(customer_search(query="alex nobody")) == []
    assert len(customer_search(query="")) == 3


def test_a_word_never_matches_across_two_fields():
    CustomerFactory(email="kim@example.com", full_name="Lee", external_id="u_1")

    assert emails(customer_search(query="com lee")) == ["kim@example.com"]
    assert emails(customer_search(query="comlee")) == []
    assert emails(customer_search(query="com lee u_1")) == ["kim@example.com"]


def test_like_wildcards_in_a_word_match_themselves_only():
    CustomerFactory(email="kim@example.com", full_name="100% Kim", external_id=None)
    CustomerFactory(email="lee@example.com", full_name="Lee", external_id=None)

    assert emails(customer_search(query="%")) == ["kim@example.com"]
    assert emails(customer_search(query="_")) == []
    assert emails(customer_search(query="e_a")) == []


def test_a_public_id_is_found_from_its_start():
    customer = CustomerFactory()
    CustomerFactory()

    assert emails(customer_search(query=customer.public_id[:9])) == [customer.email]


def test_a_whole_email_external_id_or_public_id_is_answered_alone_first():
    alex = CustomerFactory(email="alex@example.com", external_id="u_1")
    CustomerFactory(email="malex@example.com", external_id="u_10")

    for ref in ["ALEX@example.COM", "u_1", alex.public_id]:
        page = customer_directory_page(query=ref)
        assert page.exact and emails(page.customers) == ["alex@example.com"], ref

    everyone = customer_directory_page(query="alex@example.com", exact_first=False)
    assert not everyone.exact
    assert emails(everyone.customers) == ["alex@example.com", "malex@example.com"]
    assert customer_find(ref=" Alex@Example.com ") == alex


def test_the_exact_match_page_links_to_every_customer_containing_the_words(agent_client):
    CustomerFactory(email="alex@example.com")
    CustomerFactory(email="malex@example.com")
    url = reverse("customers:directory")

    exact = agent_client.get(url, {"q": "alex@example.com"})
    partial = agent_client.get(url, {"q": "alex@example.com", "partial": "1"})

    assert emails(exact.context["customers"]) == ["alex@example.com"]
    assert b'href="?q=alex%40example.com&amp;partial=1"' in exact.content
    assert emails(partial.context["customers"]) == ["alex@example.com", "malex@example.com"]


def test_directory_pages_by_keyset_in_email_order_and_keeps_the_query(agent_client):
    for n in reversed(range(30)):
        CustomerFactory(email=f"User{n:02}@example.com" if n % 2 else f"user{n:02}@example.com")
    CustomerFactory(email="other@elsewhere.example")
    url = reverse("customers:directory")

    first = agent_client.get(url, {"q": "example.com"})
    html = first.content.decode()
    next_url = first.context["next_url"]
    second = agent_client.get(url + next_url)

    assert [c.email.lower() for c in first.context["customers"]] == [
        f"user{n:02}@example.com" for n in range(25)
    ]
    assert "1–25 of many" in html and "Many matches for" in html
    assert next_url == "?q=example.com&after=user24%40example.com&start=26"
    assert 'rel="next" href="?q=example.com&amp;after=user24%40example.com&amp;start=26"' in html
    assert [c.email.lower() for c in second.context["customers"]] == [
        f"user{n:02}@example.com" for n in range(25, 30)
    ]
    assert "26–30 of 30" in second.content.decode() and second.context["next_url"] == ""
    assert 'href="?q=example.com">First page' in second.content.decode()


def test_directory_never_counts_the_matches(agent_client):
    for n in range(30):
        CustomerFactory(email=f"user{n:02}@example.com")

    with CaptureQueriesContext(connection) as queries:
        agent_client.get(reverse("customers:directory"), {"q": "user"})
        agent_client.get(reverse("customers:directory"))

    assert not [q["sql"] for q in queries if "COUNT(" in q["sql"].upper()]


def test_a_single_page_says_how_many_matched(agent_client):
    CustomerFactory(email="kim@example.com")
    CustomerFactory(email="lee@example.com")

    html = agent_client.get(reverse("customers:directory"), {"q": "example"}).content.decode()

    assert "2 matches for" in html and 'class="pager"' not in html


@pytest.mark.skipif(connection.vendor != "postgresql", reason="trigram indexes: PostgreSQL")
def test_on_postgresql_a_word_is_searched_on_the_trigram_indexes():
    CustomerFactory(email="alex@example.com", tenant=TenantFactory(name="Acme"))
    customers = customer_search(query="acme").order_by()  # the plan of the filter
    with connection.cursor() as cursor:
        # A table this small is read whole, or walked along any index: leave the planner
        # only bitmap scans, which need an index whose expression is the one filtered on.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_indexscan = off")
        plan = customers.explain()
        tenant_plan = (
            Tenant.objects.alias(text=tenant_search_text()).filter(text__icontains="acme").explain()
        )

    assert "Bitmap Index Scan on customer_search_trgm" in plan, plan
    assert "Bitmap Index Scan on customers_customer_public_id" in plan, plan  # id's start
    assert "Bitmap Index Scan on customers_customer_tenant_id" in plan, plan  # tenant's
    assert "Bitmap Index Scan on tenant_search_trgm" in tenant_plan, tenant_plan


@pytest.mark.skipif(connection.vendor != "postgresql", reason="trigram indexes: PostgreSQL")
def test_on_postgresql_analyze_samples_the_searched_text_finely():
    # A coarse sample let one ANALYZE in ten misjudge a rare word and walk the email index
    # through a quarter of a million customers (customers.search).
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT attstattarget FROM pg_attribute"
            " WHERE attrelid = 'customer_search_trgm'::regclass AND attnum = 1"
        )
        assert cursor.fetchone()[0] == SEARCH_TEXT_STATISTICS == 10_000
